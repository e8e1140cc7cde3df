"""Figures (melunmix.analysis.plots); the run report's tests are in tests/test_report.py.

Figures are checked for what they show (the data behind lines, images, boxes and texts,
against librosa, museval, the tables they draw and closed forms), their structure (axes,
artists) and that they are written as PNGs.
"""

from pathlib import Path

import matplotlib

import librosa
import numpy as np
import pandas as pd
import pytest

from PIL import Image

from melunmix.base import names
from melunmix.analysis import audio_figures, figure_style, score_figures, training_figures, tuning_figures
from melunmix.base.names import MODELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


RATE = 8000


def assert_png(path: Path):
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert not list(Path(path).parent.glob(".*.tmp*")), "temporary file left behind"


def assert_same_db(actual, expected):
    """Equal dB images: 1e-3 dB where loud; at -80 dB float32 rounding of the STFT shows,
    so quiet bins are compared as powers relative to the maximum."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    loud = expected > -50.0
    np.testing.assert_allclose(actual[loud], expected[loud], atol=1e-3)
    np.testing.assert_allclose(10 ** (actual / 10), 10 ** (expected / 10), rtol=1e-5, atol=1e-7)


def sine(freq, seconds=1.0, rate=RATE, amplitude=0.5, nb_channels=1):
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (nb_channels, 1)).astype(np.float32)


def history(losses_train, losses_valid):
    return pd.DataFrame({"epoch": np.arange(1, len(losses_train) + 1), "train_loss": losses_train,
                         "valid_loss": losses_valid, "lr": 1e-3})


# --------------------------------------------------------------------------- colours
def test_method_colours_are_consistent_and_distinct():
    assert figure_style.method_color("baseline") == figure_style.method_color("openunmix") \
        == figure_style.method_color("openunmix/seed42") == figure_style.method_color("openunmix-seed7")
    assert figure_style.method_color("proposed") == figure_style.method_color("melunmix")
    assert figure_style.method_color("melunmix-half-seed3") == figure_style.METHOD_COLORS["melunmix-half"]
    known = list(names.METHOD_ORDER)
    assert list(figure_style.METHOD_COLORS) == known  # one colour per method of the registry
    assert len({figure_style.method_color(m) for m in known}) == len(known)
    # a half-training checkpoint: its model's hue, lighter
    for model in MODELS:
        full = np.array(matplotlib.colors.to_rgb(figure_style.method_color(model)))
        half = np.array(matplotlib.colors.to_rgb(figure_style.method_color(f"{model}-half")))
        np.testing.assert_allclose(half, full + (1 - full) * 0.5, atol=1 / 255)
    # an unknown method keeps its colour between calls and avoids the known ones
    assert figure_style.method_color("my_method") == figure_style.method_color("my_method")
    assert figure_style.method_color("my_method") not in {figure_style.method_color(m) for m in known}
    assert names.order_methods(["MIX", "zzz", "melunmix", "IRM1", "openunmix"]) == \
        ["openunmix", "melunmix", "zzz", "IRM1", "MIX"]
    assert names.method_label("melunmix-seed1") == "MelUnmix (mel, proposed) seed1"
    assert names.method_label("other-seed1") == "other-seed1"


# --------------------------------------------------------------------------- loss curves
def test_loss_curves_draw_train_solid_and_valid_dashed_per_model(tmp_path):
    histories = {"melunmix": history([3.0, 2.5, 2.3], [3.1, 2.4, 2.6]),
                 "openunmix": history([2.0, 1.0, 0.6], [2.2, 1.6, 1.4])}
    path = tmp_path / "figures" / "loss_curves.png"
    fig = training_figures.loss_curves(histories, path=path, log_y=True)
    assert_png(path)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * len(histories)
    assert ax.get_yscale() == "log"
    by_label = {line.get_label(): line for line in ax.lines}
    train = by_label["Open-Unmix (baseline), train"]
    valid = by_label["Open-Unmix (baseline), validation"]
    assert train.get_linestyle() == "-" and valid.get_linestyle() == "--"
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(train.get_ydata(), [2.0, 1.0, 0.6])
    np.testing.assert_array_equal(valid.get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(valid.get_ydata(), [2.2, 1.6, 1.4])
    assert matplotlib.colors.same_color(train.get_color(), figure_style.method_color("openunmix"))
    assert matplotlib.colors.same_color(by_label["MelUnmix (mel, proposed), train"].get_color(),
                                        figure_style.method_color("melunmix"))
    # best validation epoch of the proposed model (epoch 2, 2.4) is marked
    marks = [c.get_offsets()[0].tolist() for c in ax.collections]
    assert [2.0, 2.4] in marks and [3.0, 1.4] in marks


def test_loss_curves_read_history_csv_and_reject_missing_columns(tmp_path):
    csv = tmp_path / "history.csv"
    history([1.0, 0.5], [1.2, 0.9]).to_csv(csv, index=False)
    fig = training_figures.loss_curves({"openunmix": csv})
    np.testing.assert_array_equal(fig.axes[0].lines[1].get_ydata(), [1.2, 0.9])
    bad = history([1.0], [1.0]).drop(columns="valid_loss")
    with pytest.raises(ValueError, match="valid_loss"):
        training_figures.loss_curves({"openunmix": bad})
    with pytest.raises(ValueError, match="non-empty"):
        training_figures.loss_curves({})
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        training_figures.loss_curves({"openunmix": tmp_path / "missing.csv"})


def test_learning_curves_show_each_seed_and_the_median_over_steps_every_seed_reached(tmp_path):
    def run(valid, sdr, steps_per_epoch=10):
        epochs = np.arange(1, len(valid) + 1)
        return pd.DataFrame({"epoch": epochs, "step": epochs * steps_per_epoch, "valid_loss": valid,
                             "valid_sdr": sdr})

    histories = {"openunmix-seed1": run([3.0, 2.0, 1.5, 1.4], [np.nan, 1.0, np.nan, 2.0]),
                 "openunmix-seed2": run([3.2, 2.2, 1.8], [np.nan, 0.5, 1.5]),  # stopped a epoch earlier
                 "openunmix-seed3": run([2.8, 2.4, 1.6, 1.7], [np.nan, 0.8, np.nan, 1.9]),
                 "melunmix-seed1": run([2.5, 1.5], [np.nan, 3.0])}
    path = tmp_path / "learning_curves.png"
    fig = training_figures.learning_curves(histories, path=path, half_step=20)
    assert_png(path)
    loss_ax, sdr_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and loss_ax.get_xlabel() == "optimiser steps"
    thick = {line.get_label(): line for line in loss_ax.lines if line.get_linewidth() > 2}
    assert set(thick) == {"Open-Unmix (baseline) (3 seeds)", "MelUnmix (mel, proposed) (1 seed)"}
    median = thick["Open-Unmix (baseline) (3 seeds)"]
    # Steps 10-30: every seed reached them; the median of (3.0, 3.2, 2.8), (2.0, 2.2, 2.4), (1.5, 1.8, 1.6).
    np.testing.assert_array_equal(median.get_xdata(), [10, 20, 30])
    np.testing.assert_allclose(median.get_ydata(), [3.0, 2.2, 1.6])
    thin = [line for line in loss_ax.lines if 0 < line.get_linewidth() < 1]
    assert len(thin) == 4
    for line in thin[:3]:
        assert matplotlib.colors.same_color(line.get_color(), figure_style.method_color("openunmix"))
    # Each run's best validation loss is circled; the SDR panel's median uses the epochs with a score.
    marks = sorted(tuple(c.get_offsets()[0].tolist()) for c in loss_ax.collections)
    assert marks == [(20.0, 1.5), (30.0, 1.6), (30.0, 1.8), (40.0, 1.4)]
    sdr_median = next(line for line in sdr_ax.lines if line.get_label().startswith("Open-Unmix"))
    np.testing.assert_array_equal(sdr_median.get_xdata(), [20])
    np.testing.assert_allclose(sdr_median.get_ydata(), [0.8])
    assert any(list(line.get_xdata()) == [20, 20] for line in loss_ax.lines)  # the half-training mark
    assert "dotted: the half-training comparison" in fig._suptitle.get_text()
    # Without half-training weights scored, no dotted line and no word of it.
    plain = training_figures.learning_curves(histories)
    assert not any(line.get_linestyle() == ":" for ax in plain.axes for line in ax.lines)
    assert plain._suptitle.get_text() == "Thin: one seed; thick: median over seeds"
    with pytest.raises(ValueError, match="valid_loss"):
        training_figures.learning_curves({"openunmix": histories["openunmix-seed1"].drop(columns="valid_loss")})


# --------------------------------------------------------------------------- audio figures
def test_feature_panel_shows_librosas_stft_mel_and_mfcc(tmp_path):
    n_fft, n_hop, n_mels, n_mfcc = 512, 128, 40, 13
    rng = np.random.default_rng(0)
    mono = sine(440.0)[0] + sine(2000.0, amplitude=0.1)[0] + 0.01 * rng.standard_normal(RATE)
    audio = np.stack([mono, mono]).astype(np.float32)  # identical channels: mono reference
    path = tmp_path / "features.png"
    fig = audio_figures.feature_panel(audio, RATE, n_fft, n_hop, n_mels, n_mfcc, path=path,
                              title="excerpt")
    assert_png(path)
    from PIL import Image

    width, height = Image.open(path).size
    assert width / height < 2.5  # a 2 x 2 grid: readable at page width (one row of four was 4.4:1)
    assert len(fig.axes) == 7  # 4 panels + 3 colour bars
    wave, stft_ax, mel_ax, mfcc_ax = fig.axes[:4]  # the colour bars come after the panels
    assert len(wave.lines) == 2

    power = np.abs(librosa.stft(mono.astype(np.float64), n_fft=n_fft, hop_length=n_hop,
                                center=True, pad_mode="constant")) ** 2
    expected_stft = librosa.power_to_db(power, ref=np.max, top_db=80.0)
    assert_same_db(stft_ax.images[0].get_array(), expected_stft)
    mel = librosa.feature.melspectrogram(S=power, sr=RATE, n_fft=n_fft, n_mels=n_mels)
    assert_same_db(mel_ax.images[0].get_array(), librosa.power_to_db(mel, ref=np.max, top_db=80.0))
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=n_mfcc)
    np.testing.assert_allclose(mfcc_ax.images[0].get_array(), mfcc, atol=2e-3)
    # the loudest STFT bin is the 440 Hz tone
    peak_bin = np.unravel_index(np.argmax(stft_ax.images[0].get_array()), expected_stft.shape)[0]
    assert abs(peak_bin * RATE / n_fft - 440.0) <= RATE / n_fft


def test_feature_panel_rejects_bad_audio_and_settings():
    audio = sine(440.0, nb_channels=2)
    with pytest.raises(ValueError, match="channels first"):
        audio_figures.feature_panel(audio.T, RATE, 512, 128, 40, 13)
    with pytest.raises(ValueError, match="n_mfcc"):
        audio_figures.feature_panel(audio, RATE, 512, 128, 10, 13)
    bad = audio.copy()
    bad[0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        audio_figures.feature_panel(bad, RATE, 512, 128, 40, 13)
    with pytest.raises(ValueError, match="sample_rate"):
        audio_figures.feature_panel(audio, 0, 512, 128, 40, 13)


def test_waveform_and_spectrogram_shows_the_tone(tmp_path):
    audio = sine(1000.0, nb_channels=2)
    path = tmp_path / "song.png"
    fig = audio_figures.waveform_and_spectrogram(audio, RATE, "a song", n_fft=256, n_hop=64, path=path,
                                         max_freq=3000.0)
    assert_png(path)
    assert len(fig.axes) == 3  # waveform, spectrogram, colour bar
    wave, spec = fig.axes[0], fig.axes[1]
    assert len(wave.lines) == 2
    np.testing.assert_array_equal(wave.lines[0].get_ydata(), audio[0])
    image = spec.images[0].get_array()
    assert image.shape == (129, 1 + RATE // 64)
    assert np.argmax(image.mean(axis=1)) == 1000 * 256 // RATE
    assert spec.get_ylim() == pytest.approx((0.0, 3.0))  # kHz
    assert spec.get_xlim() == pytest.approx((0.0, 1.0))  # s


def test_spectrogram_comparison_shares_one_db_scale(tmp_path):
    loud = sine(500.0, nb_channels=2)
    panels = {"mixture": loud, "vocals": 0.1 * loud, "estimate": 0.01 * loud}
    path = tmp_path / "comparison.png"
    fig = audio_figures.spectrogram_comparison(panels, RATE, 256, 64, path=path)
    assert_png(path)
    assert len(fig.axes) == len(panels) + 1
    images = [ax.images[0] for ax in fig.axes[:3]]
    assert [ax.get_title() for ax in fig.axes[:3]] == list(panels)
    assert all(im.get_clim() == (-80.0, 0.0) for im in images)
    db = [np.asarray(im.get_array()) for im in images]
    # amplitude x0.1 is -20 dB on the shared scale (down to the -80 dB floor)
    np.testing.assert_allclose(db[1], np.maximum(db[0] - 20.0, -80.0), atol=1e-3)
    np.testing.assert_allclose(db[2], np.maximum(db[0] - 40.0, -80.0), atol=1e-3)
    assert db[0].max() == pytest.approx(0.0)
    # Five signals: a 3 x 2 grid in reading order (the sixth cell removed), one colour bar.
    five = {f"signal {i}": loud * 0.5 ** i for i in range(5)}
    path = tmp_path / "five.png"
    grid = audio_figures.spectrogram_comparison(five, RATE, 256, 64, path=path, dpi=40)
    assert len(grid.axes) == 5 + 1 and [ax.get_title() for ax in grid.axes[:5]] == list(five)
    corners = [ax.get_position() for ax in grid.axes[:5]]
    assert corners[0].x0 < corners[1].x0 and corners[0].y0 == pytest.approx(corners[1].y0)  # side by side
    assert corners[2].y0 < corners[0].y0 and corners[2].x0 == pytest.approx(corners[0].x0)  # next row
    width, height = Image.open(path).size
    assert width / height > 1.0, (width, height)
    with pytest.raises(ValueError, match="different lengths"):
        audio_figures.spectrogram_comparison({"a": loud, "b": loud[:, :-10]}, RATE, 256, 64)
    with pytest.raises(ValueError, match="non-empty"):
        audio_figures.spectrogram_comparison({}, RATE, 256, 64)


# --------------------------------------------------------------------------- evaluation figures
@pytest.fixture
def museval_scores(tmp_path):
    """Per-frame scores as museval writes and reads them: JSON per track, MethodStore."""
    import museval

    rng = np.random.default_rng(1)
    store = museval.MethodStore()
    for m, method in enumerate(["openunmix", "melunmix", "MIX"]):
        folder = tmp_path / "eval" / method
        (folder / "test").mkdir(parents=True)
        for track in ["song A", "song B", "song C"]:
            track_store = museval.TrackStore(track, win=1.0, hop=1.0)
            for target in ["vocals", "accompaniment"]:
                values = {k: (m + rng.normal(size=6)).tolist() for k in ["SDR", "SIR", "ISR", "SAR"]}
                values["SDR"][2] = np.nan  # a silent window: museval writes NaN
                track_store.add_target(target, values)
            track_store.save(folder / "test" / f"{track}.json")
        store.add_eval_dir(folder)
    return store


def test_metric_boxplots_show_museval_per_track_medians(tmp_path, museval_scores):
    metrics = ("SDR", "SIR", "ISR", "SAR")
    path = tmp_path / "boxplots.png"
    fig = score_figures.metric_boxplots(museval_scores.df, target="vocals", metrics=metrics, path=path)
    assert_png(path)
    assert len(fig.axes) == len(metrics)
    assert sum(len(ax.patches) for ax in fig.axes) == 3 * len(metrics)
    per_track = museval_scores.agg_frames_scores().reset_index()  # museval's own aggregation
    methods = ["openunmix", "melunmix", "MIX"]
    for ax, metric in zip(fig.axes, metrics):
        assert ax.get_title() == metric
        # median lines of the boxes (drawn in method order) = median over tracks
        medians = {line.get_gid(): line.get_ydata()[0] for line in ax.lines
                   if str(line.get_gid()).startswith("median")}
        shown = [medians[f"median {m}"] for m in methods]
        assert [p.get_gid() for p in ax.patches] == [f"box {m}" for m in methods]
        vocals = per_track[(per_track["target"] == "vocals") & (per_track["metric"] == metric)]
        expected = [vocals.loc[vocals["method"] == m, "score"].median() for m in methods]
        np.testing.assert_allclose(shown, expected, atol=1e-9)
        # one dot per track per method
        assert sum(len(c.get_offsets()) for c in ax.collections) == 3 * 3


def test_metric_boxplots_reject_bad_input(museval_scores):
    with pytest.raises(ValueError, match="track"):
        score_figures.metric_boxplots(museval_scores.df.drop(columns="track"))
    with pytest.raises(ValueError, match="available targets"):
        score_figures.metric_boxplots(museval_scores.df, target="drums")
    with pytest.raises(ValueError, match="PES"):
        score_figures.metric_boxplots(museval_scores.df, metrics=("SDR", "PES"))
    with pytest.raises(ValueError, match="IRM1"):
        score_figures.metric_boxplots(museval_scores.df, methods=["IRM1"])


def _cell_texts(fig):
    """{(row, column): text} of a metric table figure's cells."""
    ax = fig.axes[0]
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
            for t in ax.texts if not hasattr(t, "xyann")}


def test_metric_table_figure_shows_the_table_in_db(tmp_path, museval_scores):
    long = museval_scores.agg_frames_tracks_scores().reset_index()  # method, target, metric, score
    long.loc[0, "score"] = np.nan
    path = tmp_path / "table.png"
    fig = score_figures.metric_table_figure(long, path=path)
    assert_png(path)
    ax = fig.axes[0]
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows == [names.method_label(m) for m in ["openunmix", "melunmix", "MIX"]]
    columns = [label.get_text() for label in ax.get_xticklabels()]
    assert columns == ["SDR", "SIR", "ISR", "SAR"] * 2
    cells = _cell_texts(fig)
    assert len(cells) == 3 * 8
    for (method, target, metric), score in long.set_index(["method", "target", "metric"])["score"].items():
        i = ["openunmix", "melunmix", "MIX"].index(method)
        j = ["vocals", "accompaniment"].index(target) * 4 + ["SDR", "SIR", "ISR", "SAR"].index(metric)
        assert cells[(i, j)] == ("n/a" if np.isnan(score) else f"{score:.2f}")
    groups = [t.get_text() for t in ax.texts if hasattr(t, "xyann")]
    assert groups == ["vocals", "accompaniment"]
    # the wide table, and its CSV, give the same figure
    wide = long.pivot(index="method", columns=["target", "metric"], values="score")
    wide.to_csv(tmp_path / "poster.csv")
    assert _cell_texts(score_figures.metric_table_figure(wide)) == cells
    assert _cell_texts(score_figures.metric_table_figure(tmp_path / "poster.csv")) == cells


def test_metric_table_figure_rejects_unaggregated_or_incomplete_tables(museval_scores):
    with pytest.raises(ValueError, match="several scores"):
        score_figures.metric_table_figure(museval_scores.df)
    long = museval_scores.agg_frames_tracks_scores().reset_index()
    with pytest.raises(ValueError, match="score"):
        score_figures.metric_table_figure(long.drop(columns="score"))


def paired_table(models=("melunmix", "mfccunmix", "linunmix-half"), songs=16, seeds=3):
    """A paired_differences table with known values: model i has median i - 1 dB."""
    rows = []
    for i, model in enumerate(models):
        for target in ("vocals", "accompaniment"):
            for k, metric in enumerate(("SDR", "SIR", "ISR", "SAR")):
                value = i - 1.0 + 0.1 * k
                rows.append(dict(model=model, baseline="openunmix", target=target, metric=metric,
                                 pairing="seed", n_songs=songs, n_songs_excluded=0, n_seeds=seeds,
                                 n_seeds_baseline=seeds, median_diff=value, mean_diff=value,
                                 ci_low=value - 0.5, ci_high=value + 0.25, level=0.95,
                                 p_wilcoxon=0.01 if i == 0 else 0.5,
                                 p_holm=0.03 if i == 0 else 0.9))
    return pd.DataFrame(rows)


def test_paired_differences_figure_draws_each_models_median_and_interval(tmp_path):
    table = paired_table()
    table.to_csv(tmp_path / "paired_differences.csv", index=False)
    path = tmp_path / "figures" / "paired_differences.png"
    fig = score_figures.paired_differences_figure(tmp_path / "paired_differences.csv", path=path)
    assert_png(path)
    assert [ax.get_title() for ax in fig.axes] == ["SDR", "SIR", "ISR", "SAR"]
    assert "16 songs x 3 seeds" in fig._suptitle.get_text()
    assert "Open-Unmix (baseline)" in fig._suptitle.get_text()
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == [names.method_label(m) for m in ("melunmix", "mfccunmix", "linunmix-half")]
    vocals = table[table["target"] == "vocals"].set_index(["metric", "model"])
    for ax in fig.axes:
        by_gid = {artist.get_gid(): artist for artist in ax.lines + ax.collections}
        zero = by_gid["zero"]
        assert list(zero.get_xdata()) == [0.0, 0.0]
        for y, model in enumerate(("melunmix", "mfccunmix", "linunmix-half")):
            row = vocals.loc[(ax.get_title(), model)]
            point = by_gid[f"point {model}"]
            assert point.get_xdata()[0] == pytest.approx(row["median_diff"]) and point.get_ydata()[0] == y
            (segment,) = by_gid[f"ci {model}"].get_segments()
            np.testing.assert_allclose(segment, [[row["ci_low"], y], [row["ci_high"], y]])
            # filled: significant after Holm; open: not
            filled = point.get_markerfacecolor() != "white"
            assert filled == (row["p_holm"] < 0.05)
            assert matplotlib.colors.same_color(point.get_color(), figure_style.method_color(model))
        assert by_gid["point linunmix-half"].get_marker() == "s"
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]  # first model on top
    # rows with other counts: the counts move into the labels
    mixed = pd.concat([paired_table(("melunmix",)), paired_table(("mfccunmix",), songs=12)])
    fig = score_figures.paired_differences_figure(mixed)
    width, height = fig.get_size_inches()
    assert width / height <= 4.2  # two lines: still readable at page width
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][1].endswith("(12x3)")
    # the proposed model against a control: a line of its own below the models, "A - B"
    control = paired_table(("melunmix",)).assign(baseline="linunmix", median_diff=0.3)
    fig = score_figures.paired_differences_figure(pd.concat([table, control]))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1] == f"{names.method_label('melunmix')} - {names.method_label('linunmix')}"
    by_gid = {artist.get_gid(): artist for artist in fig.axes[0].lines}
    assert by_gid["point melunmix vs linunmix"].get_xdata()[0] == 0.3
    assert by_gid["point melunmix vs linunmix"].get_ydata()[0] == 3
    assert by_gid["point melunmix"].get_xdata()[0] == pytest.approx(-1.0)
    assert "Open-Unmix (baseline)" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="drums"):
        score_figures.paired_differences_figure(table, target="drums")
    with pytest.raises(ValueError, match="PES"):
        score_figures.paired_differences_figure(table, metrics=["SDR", "PES"])
    with pytest.raises(ValueError, match="ci_low"):
        score_figures.paired_differences_figure(table.drop(columns="ci_low"))


def test_training_length_figure_joins_half_and_full_training(tmp_path):
    rows = []
    for model, half, full in (("openunmix", 3.0, 4.0), ("melunmix", 3.5, 4.5), ("mfccunmix", None, 4.2)):
        for name, value in ((f"{model}-half", half), (model, full)):
            if value is not None:
                rows.append(dict(model=name, target="vocals", metric="SDR", n_songs=4, n_seeds=2,
                                 median=value, mean=value, ci_low=value - 1, ci_high=value + 0.5,
                                 level=0.95))
    path = tmp_path / "training_length.png"
    fig = score_figures.training_length_figure(pd.DataFrame(rows), path=path)
    assert_png(path)
    (ax,) = fig.axes
    lines = {line.get_gid(): line for line in ax.lines}
    assert set(lines) == {"model openunmix", "model melunmix"}  # mfccunmix has no half checkpoint
    np.testing.assert_allclose(lines["model melunmix"].get_ydata(), [3.5, 4.5])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["half training", "full training"]
    segments = np.concatenate([c.get_segments() for c in ax.collections])
    assert sorted(round(s[0][1], 6) for s in segments) == [2.0, 2.5, 3.0, 3.5]  # interval lows
    with pytest.raises(ValueError, match="half-training"):
        score_figures.training_length_figure(pd.DataFrame(rows[-1:]))


# --------------------------------------------------------------------------- tuning, data
def test_search_space_plot_of_an_optuna_study(tmp_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        gamma = trial.suggest_float("lr_decay_gamma", 0.1, 0.9)
        if trial.number == 3:
            raise optuna.TrialPruned()
        return (np.log10(lr) + 3) ** 2 + (gamma - 0.3) ** 2

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=8)
    trials = study.trials_dataframe()
    path = tmp_path / "search.png"
    fig = tuning_figures.search_space_figure(trials, path=path)
    assert_png(path)
    assert len(fig.axes) == 2  # scatter + colour bar
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    points, star = ax.collections
    assert len(points.get_offsets()) == 7  # the pruned trial is left out
    np.testing.assert_allclose(star.get_offsets()[0],
                               [study.best_params["lr"], study.best_params["lr_decay_gamma"]])
    fig = tuning_figures.search_space_figure(trials, y=None)  # loss against lr alone
    assert len(fig.axes) == 1
    assert fig.axes[0].collections[1].get_offsets()[0][1] == pytest.approx(study.best_value)
    # melunmix.training.tune's trials.csv: plain parameter names, best_valid_loss, failed trials
    table = pd.DataFrame({"trial": [0, 1, 2], "state": ["COMPLETE", "FAIL", "COMPLETE"],
                          "lr": [1e-3, 1e-2, 3e-4], "lr_decay_gamma": [0.3, 0.5, 0.7],
                          "best_valid_loss": [0.8, np.nan, 0.5]})
    table.to_csv(tmp_path / "trials.csv", index=False)
    fig = tuning_figures.search_space_figure(tmp_path / "trials.csv")
    points, star = fig.axes[0].collections
    np.testing.assert_allclose(points.get_array(), [0.8, 0.5])
    np.testing.assert_allclose(star.get_offsets()[0], [3e-4, 0.7])
    with pytest.raises(ValueError, match="'momentum'"):
        tuning_figures.search_space_figure(trials, y="momentum")
    with pytest.raises(ValueError, match="loss"):
        tuning_figures.search_space_figure(trials, value="loss")


def test_stem_loudness_plot_bars_per_track_and_stem(tmp_path):
    wide = pd.DataFrame({"track": ["song A", "song B", "song C"],
                         "vocals": [-20.0, -25.0, -np.inf], "drums": [-18.0, -19.0, -17.0],
                         "bass": [-22.0, -21.0, -23.0], "other": [-19.0, -20.0, -21.0]})
    path = tmp_path / "loudness.png"
    fig = audio_figures.stem_loudness_figure(wide, path=path)
    assert_png(path)
    ax = fig.axes[0]
    assert len(ax.patches) == 3 * 4
    floor = ax.get_xlim()[0]
    right_edges = sorted(round(p.get_x() + p.get_width(), 6) for p in ax.patches
                         if not p.get_hatch())
    finite = wide[["vocals", "drums", "bass", "other"]].to_numpy().ravel()
    assert right_edges == sorted(finite[np.isfinite(finite)].round(6).tolist())
    assert sum(bool(p.get_hatch()) for p in ax.patches) == 1  # the silent vocals
    assert all(p.get_x() == floor for p in ax.patches)
    long = wide.melt(id_vars="track", var_name="stem", value_name="rms_dbfs")
    fig_long = audio_figures.stem_loudness_figure(long)
    assert [(p.get_x(), p.get_width()) for p in fig_long.axes[0].patches] == \
        [(p.get_x(), p.get_width()) for p in ax.patches]
    with pytest.raises(ValueError, match="bass"):
        audio_figures.stem_loudness_figure(wide.drop(columns="bass"))


def test_stem_loudness_of_many_tracks_is_columns_not_a_tower(tmp_path):
    names = [f"song {i:02d}" for i in range(60)]
    levels = -30.0 + np.arange(60) / 4
    wide = pd.DataFrame({"track": names, "vocals": levels, "drums": levels - 1, "bass": levels - 2,
                         "other": levels - 3})
    path = tmp_path / "loudness.png"
    fig = audio_figures.stem_loudness_figure(wide, path=path, dpi=40)
    assert len(fig.axes) == 3  # 60 songs: three columns of 20
    assert [len(ax.patches) for ax in fig.axes] == [80, 80, 80]
    assert [ax.get_yticklabels()[0].get_text() for ax in fig.axes] == ["song 00", "song 20", "song 40"]
    # Each column's vocals bars end at its songs' levels, in the table's order.
    vocals = [p.get_x() + p.get_width() for p in fig.axes[1].patches[:20]]
    np.testing.assert_allclose(vocals, levels[20:40])
    width, height = Image.open(path).size
    assert 0.8 < width / height < 3.0, (width, height)
    # 21 songs: two columns of 11 and 10, not 20 and 1.
    assert [len(ax.get_yticks()) for ax in audio_figures.stem_loudness_figure(wide.iloc[:21]).axes] == [11, 10]


def test_boxplots_mark_residue_as_inf_and_keep_it_off_the_axis():
    """MIX's SAR (~147 dB of float residue, as written by museval or an older table) is not
    drawn on the dB axis, whose range stays the models'; an "inf" mark stands in its place."""
    rows = []
    for track, (model, mix) in {"a": (6.0, 147.1), "b": (8.0, 146.9), "c": (7.0, 147.3)}.items():
        rows += [dict(method="openunmix", track=track, target="vocals", metric="SAR", score=model),
                 dict(method="MIX", track=track, target="vocals", metric="SAR", score=mix)]
    fig = score_figures.metric_boxplots(pd.DataFrame(rows), target="vocals", metrics=["SAR"])
    ax = fig.axes[0]
    assert ax.get_ylim()[1] < 20  # not stretched to 147 dB
    marks = [t for t in ax.texts if t.get_gid() == "residue"]
    assert [m.get_text() for m in marks] == ["inf"] and marks[0].xy[0] == 2  # MIX's position
    dots = np.concatenate([np.asarray(c.get_offsets(), dtype=float).reshape(-1, 2) for c in ax.collections])
    assert len(dots) == 3 and np.isfinite(dots).all()  # the model's three songs, no MIX dot


def test_boxplots_are_a_grid_and_pool_a_models_seeds_per_track():
    rows = []
    values = {"openunmix-seed1": [1.0, 2.0, 9.0], "openunmix-seed2": [3.0, 4.0, 5.0], "MIX": [0.5, 0.4, 0.3]}
    for method, scores in values.items():
        for track, score in zip("abc", scores):
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                for frame in range(3):  # the median over frames is the score
                    rows.append(dict(method=method, track=track, target="vocals", metric=metric,
                                     score=score + (frame - 1) * 0.1))
    fig = score_figures.metric_boxplots(pd.DataFrame(rows), target="vocals")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4
    assert sorted({round(ax.get_position().x0, 2) for ax in visible}).__len__() == 2  # two columns
    assert sorted({round(ax.get_position().y0, 2) for ax in visible}).__len__() == 2  # two rows
    width, height = fig.get_size_inches()
    assert width < 8 and height < 10  # two boxes per panel: a page's width, not one long row
    for ax in visible:
        assert [p.get_gid() for p in ax.patches] == ["box openunmix", "box MIX"]
        median = next(line for line in ax.lines if line.get_gid() == "median openunmix")
        # per track the mean of the seeds (2, 3, 7), then the median over tracks
        assert median.get_ydata()[0] == pytest.approx(3.0)
    assert "mean over its 2 seeds" in fig._suptitle.get_text()


def test_tuning_curves_of_many_models_are_columns(tmp_path):
    rows = []
    models = ["openunmix", "melunmix", "mfccunmix", "linunmix", "wideunmix"]
    for model in models:
        for trial, lr in enumerate([0.01, 0.003]):
            for epoch in (1, 2, 3):
                rows.append(dict(model=model, trial=trial, epoch=epoch, lr=lr * 0.9 ** (epoch - 1),
                                 valid_loss=1.0 / epoch + trial))
    path = tmp_path / "curves.png"
    fig = tuning_figures.tuning_curves_figure(pd.DataFrame(rows), path=path, dpi=40)
    panels = fig.axes[:-1]  # the last is the trial colour bar
    assert len(panels) == 10
    titles = [ax.get_title() for ax in panels]
    # Row 0: each model's learning rate; row 1: its validation loss, the same column.
    for model in models:
        lr_ax = panels[titles.index(f"{names.method_label(model)}: learning rate")]
        loss_ax = panels[titles.index(f"{names.method_label(model)}: validation loss")]
        assert lr_ax.get_position().x0 == pytest.approx(loss_ax.get_position().x0)
        assert lr_ax.get_position().y0 > loss_ax.get_position().y0
        assert lr_ax.get_yscale() == "log"
        np.testing.assert_allclose(sorted(loss_ax.lines[0].get_ydata()), [1 / 3, 1 / 2, 1.0])
    width, height = Image.open(path).size
    assert width / height > 1.5, (width, height)
    # Two models keep one row each: learning rate left, loss right.
    two = tuning_figures.tuning_curves_figure(pd.DataFrame([r for r in rows if r["model"] in models[:2]]))
    first, second = two.axes[0].get_position(), two.axes[1].get_position()
    assert first.y0 == pytest.approx(second.y0) and first.x0 < second.x0
