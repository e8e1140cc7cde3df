"""melunmix.analysis.audio_figures: waveforms, spectrograms, feature panels, stem loudness, scaler statistics."""

import librosa
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from melunmix.analysis import audio_figures

from figures_support import RATE, assert_png, assert_same_db, sine


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
