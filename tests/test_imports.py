"""The import graph: the core runs without the notebook runner, training without the tuner,
and scoring without any plotting library (its workers without the statistics either). Each check imports (or runs) in a fresh process
and reads its ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from melunmix.models.networks import build_model, save_model

#: The notebook runner and what only figures and reports need.
RUNNER = {"melunmix.study.pipeline", "melunmix.study.run_setup", "melunmix.commands.cli", "papermill", "nbclient"}
DRAWING = {"matplotlib", "melunmix.analysis.figure_style", "melunmix.study.report"}


def _modules(code: str) -> set[str]:
    """Modules loaded by a fresh interpreter after running ``code``."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {name.split(".")[0] if not name.startswith("melunmix") else name
            for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("module", ["melunmix.training.train", "melunmix.training.tune", "melunmix.scoring.evaluate", "melunmix.separation.separate"])
def test_the_core_imports_nothing_of_the_notebook_runner(module):
    loaded = _modules(f"import {module}")
    assert not loaded & RUNNER, sorted(loaded & RUNNER)


def test_training_does_not_import_the_tuner():
    loaded = _modules("import melunmix.training.train")
    assert "melunmix.training.tune" not in loaded and "optuna" not in loaded
    assert "melunmix.training.hyperparameters" in loaded  # where training reads tuned values


#: Modules a scoring worker may import: reading, separating, scoring and writing one track.
SCORING = ["melunmix.scoring.evaluate", "melunmix.scoring.track_audio", "melunmix.scoring.museval_scores", "melunmix.base.processes",
           "melunmix.commands.score"]


@pytest.fixture
def scoring_inputs(small_dataset, tmp_path):
    """A generated root with one test song, and a tiny openunmix vocals model for it."""
    root = small_dataset(nb_train=1, nb_valid=0, nb_test=1, seed=3, sample_rate=8000)
    model = build_model("openunmix", nb_bins=129, nb_channels=2, hidden_size=8, nb_layers=1, sample_rate=8000.0,
                        n_fft=256, n_hop=64)
    return root, save_model(model, tmp_path / "vocals.pth", target="vocals")


@pytest.mark.parametrize("module", SCORING)
def test_scoring_modules_import_no_statistics_and_no_plotting(module):
    loaded = _modules(f"import {module}")
    unwanted = DRAWING | RUNNER
    assert not loaded & unwanted, sorted(loaded & unwanted)
    assert not any(name.startswith("melunmix.analysis.") for name in loaded), sorted(loaded)


def test_scoring_models_and_oracles_imports_no_plotting(scoring_inputs, tmp_path):
    """A whole (serial) scoring run holds every module a scoring worker imports, and more."""
    root, path = scoring_inputs
    out = tmp_path / "eval"
    loaded = _modules(f"""
        from melunmix.scoring import evaluate
        from melunmix.datasets import find_tracks
        tracks = find_tracks({str(root)!r}, "test")
        scored = evaluate.evaluate_oracle("IRM1", tracks, {str(out)!r}, jobs=1, progress=False)
        scored += evaluate.evaluate_model({{"vocals": {str(path)!r}}}, tracks, {str(out)!r}, "openunmix",
                                          jobs=1, progress=False)
        assert all(path.is_file() for path in scored) and len(scored) == 2
    """)
    assert not loaded & (DRAWING | RUNNER), sorted(loaded & (DRAWING | RUNNER))
    assert {"melunmix.separation.separate", "melunmix.dsp.bsseval", "melunmix.separation.oracles"} <= loaded  # it did score


def test_a_scoring_worker_imports_no_statistics(scoring_inputs, tmp_path):
    """What a pool worker runs, in a fresh interpreter: its initializer, then one job per
    track and method (read, separate, score, write the JSON). The statistics (pandas
    tables, scipy tests), the figures and the notebook runner stay in the parent."""
    root, path = scoring_inputs
    out = tmp_path / "eval"
    loaded = _modules(f"""
        import os
        from pathlib import Path
        from melunmix.datasets import find_tracks
        from melunmix.scoring.evaluate import ModelSeparation, OracleSeparation, _score_track, _TrackJob
        from melunmix.base.processes import init_pool_worker
        init_pool_worker(os.getppid())
        (track,) = find_tracks({str(root)!r}, "test")
        for name, separation in [("IRM1", OracleSeparation("IRM1")),
                                 ("openunmix", ModelSeparation((("vocals", {str(path)!r}),)))]:
            json_path = Path({str(out)!r}) / name / "test" / f"{{track.name}}.json"
            _score_track(_TrackJob(track, track.name, json_path, separation, 1.0, 1.0))
            assert json_path.is_file()
    """)
    unwanted = DRAWING | RUNNER
    assert not loaded & unwanted, sorted(loaded & unwanted)
    assert not any(name.startswith("melunmix.analysis.") for name in loaded), sorted(loaded)
    assert {"melunmix.scoring.track_audio", "melunmix.scoring.museval_scores", "melunmix.dsp.bsseval"} <= loaded  # it did score


# --------------------------------------------------------------------------- the static graph
def _package_graph():
    """Every import of one package module by another, read from the source, those inside
    functions included (only a module's ``if __name__ == "__main__":`` script part is left
    out: it runs as a program, never on import). Returns (edges, private imports)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "lib" / "melunmix"

    def name_of(path):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in root.rglob("*.py")}
    edges, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        tree.body = [node for node in tree.body
                     if not (isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))]
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    imported = full if full in modules else target
                    if imported in modules and imported != name:
                        edges[name].add(imported)
                    if imported == target in modules and alias.name.startswith("_") \
                            and not alias.name.startswith("__"):
                        private.append(f"{name} imports {target}.{alias.name}")
            elif isinstance(node, ast.Import):
                edges[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return edges, private


def _cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_counting_imports_inside_functions():
    edges, _ = _package_graph()
    assert len(edges) > 40 and "melunmix.base.names" in edges["melunmix.analysis.result_tables"]  # the graph was read
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_another_modules_private_names():
    _, private = _package_graph()
    assert private == []


def _unexplained_function_imports():
    """Imports of the package's own modules inside a function body with no comment saying
    why (on the statement's lines or the line above); the script part of a module left out."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "lib" / "melunmix"
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        tree.body = [node for node in tree.body
                     if not (isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))]
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.level:
                    around = lines[node.lineno - 2:node.end_lineno]
                    if not any("#" in line for line in around):
                        found.append(f"{path.relative_to(root)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_an_import_inside_a_function_says_why():
    """The package's modules are imported at the top of a module; one inside a function
    keeps something heavy (torch, pandas, matplotlib, the notebook runner) out of a light
    entry point, and says so."""
    assert _unexplained_function_imports() == []


def test_the_vocabulary_and_the_tables_sit_at_the_bottom():
    edges, _ = _package_graph()
    assert edges["melunmix.base.names"] == set() and edges["melunmix.base.dataset_format"] == set()
    assert edges["melunmix.base.markdown"] == {"melunmix.base.names"}


# --------------------------------------------------------------------------- layers
#: The package's layers, one folder each (the data layer two: the generator below the
#: datasets), bottom up, and the layers each may import (ARCHITECTURE.md, "Layers").
#: Scoring sits below training because training scores its validation songs with it;
#: analysis reads saved results and imports no model, separation, score or report.
_BELOW_TRAINING = {"base", "dsp", "synth", "datasets", "models", "separation", "scoring"}
LAYERS = {
    "base": set(),
    "dsp": {"base"},
    "synth": {"base"},
    "datasets": {"base", "dsp", "synth"},
    "models": {"base", "dsp"},
    "separation": {"base", "dsp", "synth", "datasets", "models"},
    "scoring": {"base", "dsp", "synth", "datasets", "models", "separation"},
    "training": _BELOW_TRAINING,
    "analysis": {"base", "dsp"},
    "study": _BELOW_TRAINING | {"training", "analysis"},
    "commands": _BELOW_TRAINING | {"training", "analysis", "study"},
}
#: Outside the layers: the package itself (``melunmix/__init__.py``) and ``python -m melunmix``.
_ENTRY = {"melunmix", "melunmix.__main__"}


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _layer_breaches(edges) -> list[str]:
    """``a imports b`` for every import that goes sideways or up a layer."""
    return sorted(f"{a} imports {b}" for a, targets in edges.items() for b in targets
                  if _layer_of(a) and _layer_of(b) and _layer_of(a) != _layer_of(b)
                  and _layer_of(b) not in LAYERS[_layer_of(a)])


def test_every_module_sits_in_a_layer_folder():
    edges, _ = _package_graph()
    assert sorted(m for m in edges if m not in _ENTRY and _layer_of(m) is None) == []
    assert {_layer_of(m) for m in edges} - {None} == set(LAYERS)  # no empty layer


def test_a_layer_imports_only_the_layers_below_it():
    edges, _ = _package_graph()
    assert _layer_breaches(edges) == []


def test_the_layer_rule_finds_an_import_up_or_sideways():
    edges = {"melunmix.analysis.stats": {"melunmix.models.networks", "melunmix.base.names"},
             "melunmix.scoring.evaluate": {"melunmix.analysis.stats"},
             "melunmix.base.names": set()}
    assert _layer_breaches(edges) == ["melunmix.analysis.stats imports melunmix.models.networks",
                                      "melunmix.scoring.evaluate imports melunmix.analysis.stats"]


# --------------------------------------------------------------------------- function length
#: A screen: the most code lines (docstrings, comments and blank lines not counted) a
#: function of the package may have, so that each reads without scrolling.
SCREEN_LINES = 60


def _code_lines(source: str) -> dict[str, int]:
    """``name (line)`` -> code lines of every function in ``source``, nested ones counted
    in their own right and inside the function that holds them."""
    import ast

    tree = ast.parse(source)
    lines = source.splitlines()
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    counts = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            counts[f"{node.name} (line {node.lineno})"] = sum(
                1 for number in range(node.lineno, node.end_lineno + 1)
                if number not in docstrings and lines[number - 1].strip()
                and not lines[number - 1].strip().startswith("#"))
    return counts


def test_the_line_counter_leaves_out_docstrings_comments_and_blank_lines():
    source = 'def f(x):\n    """Doc\n\n    more doc."""\n    # a comment\n\n    y = x\n    return y\n'
    assert _code_lines(source) == {"f (line 1)": 3}


def test_no_function_is_longer_than_a_screen():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "lib" / "melunmix"
    long = [f"{path.relative_to(root)}: {name}, {n} lines" for path in sorted(root.rglob("*.py"))
            for name, n in _code_lines(path.read_text()).items() if n > SCREEN_LINES]
    assert long == []
