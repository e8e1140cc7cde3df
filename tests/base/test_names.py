"""melunmix.base.names: the study's vocabulary, checked against musdb's own setup file and
against the package's source (nothing else spells a registry out)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from melunmix.base import names

PACKAGE = Path(__file__).resolve().parents[2] / "lib" / "melunmix"


def _musdb_setup() -> dict:
    import musdb

    return yaml.safe_load((Path(musdb.__file__).parent / "configs" / "mus.yaml").read_text())


def test_stems_and_targets_are_musdbs():
    setup = _musdb_setup()
    assert names.SOURCES == tuple(setup["sources"])
    assert names.MIXTURE == "mixture" and setup["stem_ids"][names.MIXTURE] == 0
    assert names.STEMS == (names.MIXTURE, *names.SOURCES) and set(names.STEMS) == set(setup["stem_ids"])
    # every target musdb scores, in its order, but the linear mixture (not a separation target)
    assert names.TARGETS == tuple(t for t in setup["targets"] if t != "linear_mixture")
    assert set(names.ACCOMPANIMENT_SOURCES) == set(setup["targets"]["accompaniment"])
    assert set(names.SCORED_TARGETS) <= set(names.TARGETS) and names.SCORED_TARGETS[0] == "vocals"


def test_models_oracles_and_metrics():
    assert tuple(names.ORACLES) == ("IRM1", "IRM2", "IBM", "MWF", "MIX")  # SiSEC 2018's, MIX last
    assert names.METRICS == ("SDR", "SIR", "ISR", "SAR")  # the poster's order
    assert {names.BASELINE, names.PROPOSED, *names.DEFAULT_MODELS} <= set(names.MODELS)
    assert names.DEFAULT_MODELS[:2] == (names.BASELINE, names.PROPOSED)
    styles = [*names.MODELS.values(), *names.ORACLES.values()]
    assert len({s.color for s in styles}) == len(styles) and len({s.label for s in styles}) == len(styles)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", s.color) for s in styles)


def test_model_aliases():
    assert names.canonical_model_name(" Proposed ") == "melunmix"
    assert names.canonical_model_name("UMX") == "openunmix"
    assert all(names.canonical_model_name(alias) in names.MODELS for alias in names.MODEL_ALIASES)
    with pytest.raises(ValueError, match="unknown model name 'demucs'; valid names: 'openunmix'"):
        names.canonical_model_name("demucs")


def test_method_names_round_trip():
    assert names.split_seed(names.seed_method_name("melunmix-half", 7)) == ("melunmix-half", 7)
    assert names.split_seed("openunmix") == ("openunmix", None)
    assert names.split_seed("seed3") == ("seed3", None)


def test_method_registry_agrees_with_models_and_oracles():
    from melunmix.base.names import MODEL_ALIASES, ORACLES, canonical_model_name

    assert names.METHOD_ORDER[-len(ORACLES):] == tuple(ORACLES)
    # every alias the training accepts names the same method in the tables
    for alias in MODEL_ALIASES:
        model = canonical_model_name(alias)
        assert names.canonical_method(alias.upper()) == model
        assert names.canonical_method(f"{alias}-half-seed3") == model + names.HALF_SUFFIX
    assert names.METHOD_ORDER == ("openunmix", "openunmix-half", "melunmix", "melunmix-half",
                                  "mfccunmix", "mfccunmix-half", "linunmix", "linunmix-half",
                                  "wideunmix", "wideunmix-half", "IRM1", "IRM2", "IBM", "MWF", "MIX")
    assert set(names.METHOD_LABELS) == set(names.METHOD_ORDER)
    assert names.METHOD_LABELS["openunmix"] == "Open-Unmix (baseline)"
    assert names.METHOD_LABELS["melunmix"] == "MelUnmix (mel, proposed)"
    assert names.METHOD_LABELS["mfccunmix"] == "MelUnmix (MFCC)"
    assert names.METHOD_LABELS["linunmix"] == "Control (linear branch)"
    assert names.METHOD_LABELS["linunmix-half"] == "Control (linear branch), half training"


def test_method_names_resolve_and_order():
    assert names.canonical_method("MelUnmix-half-seed3") == "melunmix-half"
    assert names.canonical_method("openunmix/seed42") == "openunmix"
    assert names.canonical_method("proposed") == "melunmix"
    assert names.canonical_method("baseline-half") == "openunmix-half"
    assert names.canonical_method("my_model") is None
    assert names.method_label("melunmix-half-seed1") == "MelUnmix (mel, proposed), half training seed1"
    assert names.split_seed("melunmix-half-seed7") == ("melunmix-half", 7)
    methods = ["MIX", "zzz", "melunmix-seed10", "IRM1", "melunmix-half-seed1", "openunmix",
               "melunmix-seed2", "linunmix", "aaa", "mfccunmix-seed1"]
    assert names.order_methods(methods) == [
        "openunmix", "melunmix-seed2", "melunmix-seed10", "melunmix-half-seed1", "mfccunmix-seed1",
        "linunmix", "aaa", "zzz", "IRM1", "MIX"]
    assert names.is_reference("MIX") and names.is_reference("IRM2")
    assert not names.is_reference("melunmix-half")


def _string_tuples(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(items) == len(node.elts) and len(items) >= 3:
                yield node.lineno, tuple(items)


#: The lists only :mod:`melunmix.base.names` may spell out.
REGISTRIES = {"SOURCES": names.SOURCES, "ACCOMPANIMENT_SOURCES": names.ACCOMPANIMENT_SOURCES,
              "MODELS": names.MODELS, "ORACLES": names.ORACLES, "METRICS": names.METRICS}
#: Lists that share the names but are another fact: museval's order of bss_eval's outputs.
OTHER_FACTS = {("bsseval.py", ("SDR", "ISR", "SIR", "SAR"))}


def test_no_module_restates_a_registry():
    """A literal list of three or more stems, oracles or metrics outside names.py is a
    second home for a registry (in any order: a reordered copy is still a copy)."""
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "names.py":
            continue
        for line, items in _string_tuples(ast.parse(path.read_text())):
            if (path.name, items) in OTHER_FACTS:
                continue
            for registry, values in REGISTRIES.items():
                if len(set(items) & set(values)) >= 3:
                    copies.append(f"{path.relative_to(PACKAGE)}:{line} restates names.{registry}: {items}")
    assert not copies, "\n".join(copies)


def test_the_restatement_finder_finds_one():
    tree = ast.parse('x = 1\nstems = ("drums", "vocals", "bass")\nok = ("vocals", "accompaniment")')
    found = [items for _, items in _string_tuples(tree)]
    assert found == [("drums", "vocals", "bass")]


# --------------------------------------------------------------------------- a run's figures and tables
ROOT = PACKAGE.parents[1]


def _registered_figure(file_name: str) -> bool:
    stem = file_name.removesuffix(".png")
    return stem in names.FIGURES or any(stem.startswith(f"{name}_") for name in names.PER_MODEL_FIGURES)


def test_the_committed_runs_figures_and_tables_are_registered():
    for profile in ("demo", "study"):
        figures = [path.name for path in (ROOT / "results" / profile / "figures").glob("*.png")]
        assert figures and [f for f in figures if not _registered_figure(f)] == []
        tables = {path.stem for path in (ROOT / "results" / profile / "tables").glob("*.csv")}
        assert tables and tables - set(names.TABLES) == set()


def test_notebooks_and_readme_name_figures_from_the_registry():
    import json

    literals = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                code = "\n".join(line.split("  #")[0] for line in "".join(cell["source"]).splitlines())
                literals += re.findall(r"[\w/\-{}]+\.(?:png|csv)\b", code)
    assert literals == []  # names.figure_file(...), names.table_file(...) instead
    linked = re.findall(r"results/\w+/figures/([\w\-]+\.png)", (ROOT / "README.md").read_text())
    assert linked and [name for name in linked if not _registered_figure(name)] == []


def test_a_figure_or_table_outside_the_registry_is_refused():
    assert names.figure_file("loss_curves") == "loss_curves.png"
    assert names.figure_file("tuning_search_space", "melunmix") == "tuning_search_space_melunmix.png"
    with pytest.raises(KeyError, match="one figure per run"):
        names.figure_file("loss_curves", "melunmix")
    assert names.table_file("main", ".md") == "main.md"
    with pytest.raises(KeyError, match="'loss_curve' is not a figure of a run; figures: stem_loudness"):
        names.figure_file("loss_curve")
    with pytest.raises(KeyError, match="not a table of a run"):
        names.table_file("posters")
