"""melunmix.study.report: Markdown tables, the generic report, and the study report's layout.

The study report is checked for what a reader sees first (the stand-in warning and the
answer, equal to sentences.answer_sentence of the saved table), the order of its sections
(settings and file lists last), values that round-trip from the tables, figures that no
section names (shown, not lost) and links that resolve.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest

from melunmix.analysis import score_figures, training_figures, result_tables, sentences
from melunmix.base import names
from melunmix.base.config import load_profile
from melunmix.base.files import write_json
from melunmix.study import report

from markdown_tables import parse_markdown_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"




def history(losses_train, losses_valid):
    return pd.DataFrame({"epoch": np.arange(1, len(losses_train) + 1), "train_loss": losses_train,
                         "valid_loss": losses_valid, "lr": 1e-3})


def table_after(text: str, caption: str) -> list[list[str]]:
    """The Markdown table that follows ``**caption**``."""
    block = text.split(f"**{caption}**")[1].strip().split("\n\n")[0]
    return parse_markdown_table(block)


def links(markdown: str) -> list[str]:
    return [unquote(target) for target in re.findall(r"\]\(([^)]+)\)", markdown)]


def sections_of(text: str) -> dict[str, str]:
    return dict(re.findall(r"^## (.+?)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))


# --------------------------------------------------------------------------- tables
def test_read_table_reads_two_row_headers_back(tmp_path):
    wide = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=pd.Index(["a", "b"], name="method"),
                        columns=pd.MultiIndex.from_tuples([("vocals", "SDR"), ("vocals", "SIR")],
                                                          names=["target", "metric"]))
    wide.to_csv(tmp_path / "wide.csv")
    back = report.read_table(tmp_path / "wide.csv")
    pd.testing.assert_frame_equal(back, wide, check_names=False)
    flat = pd.DataFrame({"track": ["x", "y"], "SDR": [1.0, 2.0]})
    flat.to_csv(tmp_path / "flat.csv", index=False)
    pd.testing.assert_frame_equal(report.read_table(tmp_path / "flat.csv"), flat)


# --------------------------------------------------------------------------- generic report
def test_write_report_links_only_existing_files_and_puts_settings_after_the_sections(tmp_path):
    run = tmp_path / "results" / "smoke"
    training_figures.loss_curves({"openunmix": history([1.0, 0.5], [1.1, 0.8])},
                      path=run / "figures" / "loss curves.png")
    assert (run / "figures" / "loss curves.png").read_bytes()[:8] == PNG_MAGIC
    (run / "tables").mkdir()
    table = pd.DataFrame({"SDR": [1.5]}, index=pd.Index(["openunmix"], name="method"))
    table.to_csv(run / "tables" / "poster.csv")
    path = report.write_report(run, "A run", [
        {"heading": "Training", "text": "Two models.", "table": table,
         "images": ["figures/loss curves.png", "figures/never_made.png",
                    run / "figures" / "loss curves.png"],
         "files": [("poster table", run / "tables" / "poster.csv")]},
        report.Section("Empty", text=report.NOT_RUN),
    ], settings=load_profile("smoke"), lead="**The answer.**",
        appendix=[report.Section("Last", text="the end")])
    assert path == run / "REPORT.md"
    text = path.read_text()
    assert text.startswith("# A run\n\n**The answer.**\n")
    assert list(sections_of(text)) == ["Training", "Empty", "Settings", "Last"]
    assert "| train.epochs | 2 |" in sections_of(text)["Settings"]  # the smoke profile's summary
    targets = links(text)
    assert targets == ["figures/loss curves.png", "figures/loss curves.png", "tables/poster.csv"]
    assert all(not Path(t).is_absolute() and (run / t).is_file() for t in targets)
    assert "never_made.png" in text and "not produced" in text
    assert "| openunmix | 1.50 |" in text
    assert not list(run.glob(".*.tmp*"))
    with pytest.raises(FileNotFoundError, match="run folder"):
        report.write_report(tmp_path / "nowhere", "x", [])
    with pytest.raises(ValueError, match="heading"):
        report.write_report(run, "x", [{"text": "no heading"}])


# --------------------------------------------------------------------------- the study report
MODELS = ("openunmix", "melunmix", "mfccunmix", "linunmix")
SHIFTS = {"openunmix": 0.0, "melunmix": 0.5, "mfccunmix": 0.25, "linunmix": -0.25}


def study_scores(nb_songs=6, seeds=(1, 2)) -> pd.DataFrame:
    """Per-track scores of four models (full and half training), two seeds, and MIX."""
    rng = np.random.default_rng(4)
    songs = [f"song {i}" for i in range(nb_songs)]
    level = rng.normal(5.0, 2.0, size=nb_songs)
    rows = []
    for model in MODELS:
        for half in ("", "-half"):
            for seed in seeds:
                noise = rng.normal(0.0, 0.2, size=nb_songs)
                for song, value in zip(songs, level + SHIFTS[model] + noise - (1.0 if half else 0.0)):
                    for target in ("vocals", "accompaniment"):
                        for metric in names.METRICS:
                            rows.append(dict(method=f"{model}{half}-seed{seed}", track=song,
                                             target=target, metric=metric, score=value))
    for song, value in zip(songs, level - 8.0):
        for target in ("vocals", "accompaniment"):
            for metric in names.METRICS:
                rows.append(dict(method="MIX", track=song, target=target, metric=metric, score=value))
    return pd.DataFrame(rows)


@pytest.fixture
def study_run(tmp_path):
    run = tmp_path / "smoke"
    histories = {}
    for i, model in enumerate(("openunmix", "melunmix")):
        for seed in (1, 2):
            df = history([2.0 + i, 1.0 + i, 0.62 + i], [2.0 + i, 1.3 + i, 1.40 + i])
            (run / "models" / model / f"seed{seed}").mkdir(parents=True)
            df.to_csv(run / "models" / model / f"seed{seed}" / "history.csv", index=False)
            histories[f"{model}/seed{seed}"] = df
    training_figures.loss_curves(histories, path=run / "figures" / "loss_curves.png")
    written = result_tables.write_tables(study_scores(), run / "tables", bootstrap=200,
                                 params={"openunmix": 100, "melunmix": 150, "mfccunmix": 150,
                                         "linunmix": 150})
    score_figures.paired_differences_figure(written["paired_differences"],
                                    path=run / "figures" / "paired_differences.png")
    score_figures.training_length_figure(written["model_medians"], path=run / "figures" / "training_length.png")
    training_figures.loss_curves({"x": history([1.0], [1.0])}, path=run / "figures" / "zz_unlisted.png")
    (run / "tuning").mkdir()
    pd.DataFrame({"trial": [0, 1], "state": ["COMPLETE", "COMPLETE"], "lr": [1e-3, 3e-3],
                  "best_valid_loss": [0.9, 0.7]}).to_csv(run / "tuning" / "trials.csv", index=False)
    write_json(run / "tuning" / "best_params.json", {"lr": 0.003, "lr_decay_gamma": 0.5})
    write_json(run / "manifest.json", {"profile": "smoke", "git_commit": "abc123", "stand_in": True,
                                       "settings": load_profile("smoke").to_dict(),
                                       "notebooks": {"04_train.ipynb": {"status": "ok", "seconds": 12.5}}})
    return run


def test_study_report_opens_with_the_answer_and_ends_with_settings_and_files(study_run):
    run = study_run
    text = report.build_study_report(run).read_text()
    lines = text.splitlines()
    assert lines[0] == "# melunmix study: smoke"
    paired = pd.read_csv(run / "tables" / "paired_differences.csv")
    answer = sentences.answer_sentence(paired, "melunmix", "openunmix", "vocals", "SDR")
    assert lines[2] == report.STAND_IN_WARNING and "not MUSDB18" in lines[2]
    assert lines[4] == f"**Answer:** {answer}"
    assert answer.startswith("MelUnmix (mel, proposed) - Open-Unmix (baseline): +0.")
    assert "6 songs x 2 seeds" in answer
    # every other fully trained model follows as a bullet, then the proposed model against
    # each control; half training has its own section
    bullets = [line for line in lines[5:20] if line.startswith("- ")]
    assert [tuple(b[2:].split(":")[0].split(" - ")) for b in bullets] == [
        (names.method_label(m), names.method_label(b)) for m, b in (
            ("mfccunmix", "openunmix"), ("linunmix", "openunmix"), ("melunmix", "mfccunmix"),
            ("melunmix", "linunmix"))]
    assert bullets[-1][2:] == sentences.answer_sentence(paired, "melunmix", "linunmix", "vocals", "SDR")
    assert "Half against full training: see *Training length* below." in lines[5:20]

    sections = sections_of(text)
    assert list(sections) == [part.heading for part in report.STUDY_PARTS] + [
        "Other figures and tables", "Settings", "Provenance", "Files"]
    assert list(sections)[:2] == ["Main table", "Paired differences"]
    for missing in ("Data", "Features", "Separation examples"):
        assert sections[missing].strip() == report.NOT_RUN
    # settings come after every result; nothing of them before
    assert "| train.epochs | 2 |" in sections["Settings"]
    assert text.index("train.epochs") > text.index("## Other figures and tables")

    main = table_after(sections["Main table"], "main")
    assert main[0][:3] == ["model", "seeds", "params"]
    expected = result_tables.main_table(study_scores(), params={"openunmix": 100, "melunmix": 150})
    row = next(r for r in main[2:] if r[0] == "MelUnmix (mel, proposed)")
    column = main[0].index("vocals SDR")
    mean, sd = expected.loc["melunmix", "vocals SDR"], expected.loc["melunmix", "vocals SDR sd"]
    assert row[1:3] == ["2", "150"] and row[column] == f"{mean:.2f} ± {sd:.2f}"
    assert [r[0] for r in main[2:]][:3] == ["Open-Unmix (baseline)", "Open-Unmix (baseline), half training",
                                           "MelUnmix (mel, proposed)"]

    assert links(sections["Paired differences"]) == ["figures/paired_differences.png"]
    shown = table_after(sections["Paired differences"], "paired differences")
    mel = next(r for r in shown[2:] if r[0] == "MelUnmix (mel, proposed)" and r[3] == "SDR"
               and r[2] == "vocals")
    expected_row = paired[(paired["model"] == "melunmix") & (paired["target"] == "vocals")
                          & (paired["metric"] == "SDR")].iloc[0]
    assert mel[1] == "Open-Unmix (baseline)"
    assert mel[4:6] == ["6 x 2", f"{expected_row['median_diff']:+.2f}"]
    assert mel[-1] == expected_row["verdict"] and mel[-1] in ("higher", "lower", "equivalent", "inconclusive")

    assert "figures/training_length.png" in links(sections["Training length: half against full training"])
    assert "figures/loss_curves.png" in links(sections["Training"])
    training = table_after(sections["Training"], "losses (MSE)")
    assert [r[0] for r in training[2:]] == ["openunmix/seed1", "openunmix/seed2", "melunmix/seed1",
                                            "melunmix/seed2"]
    assert "| lr | 0.003 |" in sections["Tuning"]
    # a figure no part names is shown, not lost
    assert links(sections["Other figures and tables"]) == ["figures/zz_unlisted.png"]
    # file lists only at the end
    assert links(sections["Files"])[:2] == ["tables/bootstrap_ci.csv", "tables/main.csv"]
    assert "manifest.json" in links(sections["Files"])
    assert "models/melunmix/seed2/history.csv" in links(sections["Files"])
    body = text.split("## Settings")[0]
    assert not any(target.endswith(".csv") for target in links(body))
    assert "abc123" in sections["Provenance"]
    assert all((run / t).is_file() for t in links(text))


def test_study_report_without_stand_in_or_comparison(study_run):
    run = study_run
    manifest = run / "manifest.json"
    write_json(manifest, {"profile": "smoke", "stand_in": False})
    text = report.build_study_report(run).read_text()
    assert report.STAND_IN_WARNING not in text and "stand-in" not in text.split("## Main table")[0]
    # the run's own flag (Run.stand_in) wins over the manifest
    forced = report.build_study_report(run, stand_in=True).read_text()
    assert forced.splitlines()[2] == report.STAND_IN_WARNING
    (run / "tables" / "paired_differences.csv").unlink()
    text = report.build_study_report(run).read_text()
    assert text.splitlines()[2].startswith("**Answer:** *not available: no `tables/paired_differences.csv`")
    # a loss table saved by the run replaces the summary computed from the histories
    pd.DataFrame({"method": ["openunmix"], "final_train_loss": [0.62]}).to_csv(
        run / "tables" / "losses.csv", index=False)
    training = sections_of(report.build_study_report(run).read_text())["Training"]
    assert "losses (MSE)" not in training and "| openunmix | 0.62 |" in training


def test_study_parts_name_known_kinds_of_items(tmp_path):
    for part in report.STUDY_PARTS:
        for item in part.items:
            assert report._render_item(tmp_path, item) is None  # nothing on disk: nothing shown
    with pytest.raises(ValueError, match="figures/<name>.png"):
        report._render_item(tmp_path, "poster")
    (tmp_path / "empty").mkdir()
    text = report.build_study_report(tmp_path / "empty").read_text()
    sections = sections_of(text)
    assert all(sections[p.heading].strip() == report.NOT_RUN for p in report.STUDY_PARTS)
    assert "Other figures and tables" not in sections


def test_matched_steps_compares_models_at_the_epochs_every_run_reached():
    def history(epochs, sdr, losses):
        epoch = np.arange(1, epochs + 1)
        valid_sdr = [sdr.get(e, np.nan) for e in epoch]
        return pd.DataFrame({"epoch": epoch, "step": epoch * 10, "valid_loss": losses[:epochs],
                             "valid_sdr": valid_sdr})

    losses = np.linspace(1.0, 0.5, 12)
    histories = {
        "openunmix-seed1": history(12, {4: 1.0, 8: 2.0, 12: 3.0}, losses),
        "openunmix-seed2": history(9, {4: 3.0, 8: 4.0}, losses - 0.1),  # stopped early: no epoch 12
        "melunmix-seed1": history(12, {4: 5.0, 8: 6.0, 12: 7.0}, losses),
    }
    table = report.matched_steps(histories)
    assert list(table.index) == ["openunmix", "melunmix"]
    assert list(table.columns) == ["valid SDR at step 40 (dB)", "valid SDR at step 80 (dB)", "best valid loss",
                                   "runs"]
    assert table.loc["openunmix", "valid SDR at step 40 (dB)"] == f"2.00 ± {np.std([1, 3], ddof=1):.2f}"
    assert table.loc["melunmix", "valid SDR at step 80 (dB)"] == "6.00"  # one run: no spread
    best = [0.5, losses[8] - 0.1]  # each run's minimum over the epochs it trained
    assert table.loc["openunmix", "best valid loss"] == f"{np.mean(best):.3f} ± {np.std(best, ddof=1):.3f}"
    assert table.loc["openunmix", "runs"] == 2
