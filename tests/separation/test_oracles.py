"""melunmix.separation.oracles: SiSEC 2018's MIX and oracles (sigsep-mus-oracle), and their evaluation.

Every oracle is checked against an independent implementation of the published
definitions written out below on the whole signal (``scipy.signal.stft`` / ``istft``,
numpy, loops where clearer), on random stereo (and mono) stems whose length is not a
multiple of the hop; the module computes the same in blocks of frames. Then known
signals (a silent stem, a single active stem), the input checks, and one evaluation of
a generated WAV track through :func:`melunmix.scoring.evaluate.evaluate_oracle`.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from melunmix.base.names import SOURCES
from melunmix.datasets import find_tracks
from melunmix.scoring import evaluate as ev
from melunmix.scoring.track_audio import load_track
from melunmix.separation import oracles
from melunmix.separation.oracles import oracle_estimates

RATE = 8000
NB_SAMPLES = 3 * RATE + 123  # not a multiple of the hop (1024)
EPS = np.finfo(np.float64).eps
TOLERANCE = 1e-9


# --------------------------------------------------------------------------- signals


def _random_stems(seed: int = 0, nb_samples: int = NB_SAMPLES, nb_channels: int = 2) -> dict[str, np.ndarray]:
    """Four stems of coloured noise with envelopes, panned apart plus some independent
    noise per channel (full-rank spatial images); vocals exactly silent for 0.5 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(nb_samples) / RATE
    stems = {}
    for k, stem in enumerate(SOURCES):
        source = scipy.signal.lfilter([1.0], [1.0, -0.3 * k], rng.standard_normal(nb_samples))
        source *= 1.0 + 0.8 * np.sin(2 * np.pi * (0.5 + k) * t)
        gains = np.array([0.3 + 0.2 * k, 1.0 - 0.2 * k])[:nb_channels]
        stems[stem] = 0.1 * (source[:, None] * gains + 0.2 * rng.standard_normal((nb_samples, nb_channels)))
    stems["vocals"][RATE:RATE + RATE // 2] = 0.0
    return stems


@pytest.fixture(scope="module")
def signals():
    stems = _random_stems()
    # a real mixture is not exactly the sum of its stems (mastering, codecs)
    mixture = sum(stems.values()) + 1e-3 * np.random.default_rng(1).standard_normal((NB_SAMPLES, 2))
    return mixture, stems


# --------------------------------------------------------------------------- references


def _stft(audio):
    """(nb_samples, nb_channels) -> (nb_channels, nb_bins, nb_frames), SiSEC's STFT."""
    return scipy.signal.stft(audio.T, nperseg=2048)[-1]


def _istft(Z, nb_samples):
    return scipy.signal.istft(Z, nperseg=2048)[1].T[:nb_samples]


def _as_sources(estimates):
    return estimates["vocals"], estimates["drums"] + estimates["bass"] + estimates["other"]


def reference_irm(mixture, stems, alpha):
    """IRM.py: mask |Y_j|^alpha / (eps + sum_k |Y_k|^alpha) on the mixture STFT."""
    X = _stft(mixture)
    P = {stem: np.abs(_stft(stems[stem])) ** alpha for stem in SOURCES}
    total = EPS + P["vocals"] + P["drums"] + P["bass"] + P["other"]
    return _as_sources({stem: _istft(X * P[stem] / total, len(mixture)) for stem in SOURCES})


def reference_ibm(mixture, stems, alpha=1, theta=0.5):
    """IBM.py: 1 where |Y_j|^alpha / (eps + |X|^alpha) > theta, 0 where < theta (equal: kept)."""
    X = _stft(mixture)
    estimates = {}
    for stem in SOURCES:
        mask = np.abs(_stft(stems[stem])) ** alpha / (EPS + np.abs(X) ** alpha)
        mask[mask > theta] = 1
        mask[mask < theta] = 0
        estimates[stem] = _istft(X * mask, len(mixture))
    return _as_sources(estimates)


def _inverse(M):
    """1x1 or 2x2 inverses over the last two axes, eps added to the determinant."""
    if M.shape[-1] == 1:
        return 1.0 / (EPS + M)
    a, b, c, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 0], M[..., 1, 1]
    adjugate = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
    return adjugate / (EPS + a * d - b * c)[..., None, None]


def reference_mwf(mixture, stems):
    """MWF.py, written out on the whole signal."""
    X = _stft(mixture)
    I, F, T = X.shape
    R, Rjj = {}, {}
    for stem in SOURCES:
        Y = _stft(stems[stem])
        Rjj[stem] = np.zeros((F, T, I, I), dtype=complex)
        for i1 in range(I):
            for i2 in range(I):
                Rjj[stem][..., i1, i2] = Y[i1] * np.conj(Y[i2])
        P = np.mean(np.abs(Y) ** 2, axis=0)
        Rj = np.mean(Rjj[stem] / (EPS + P[..., None, None]), axis=1)  # (F, I, I)
        # MWF.py: Rj * I / np.trace(Rj): numpy traces axes 0 and 1, one number per column k
        for k in range(I):
            c_k = sum(Rj[i, i, k] for i in range(min(F, I)))
            if c_k != 0:  # MWF.py gives NaN here (0 / 0); melunmix leaves the column (zero)
                Rj[:, :, k] = Rj[:, :, k] * I / c_k
        R[stem] = Rj + EPS * np.eye(I)
    P = {}
    for stem in SOURCES:
        product = _inverse(R[stem])[:, None] @ Rjj[stem]
        P[stem] = np.real(np.trace(product, axis1=-2, axis2=-1)) / I
    Cxx = sum(P[stem][..., None, None] * R[stem][:, None] for stem in SOURCES)
    Cxx_inverse = _inverse(Cxx)
    estimates = {}
    for stem in SOURCES:
        G = (P[stem][..., None, None] * R[stem][:, None]) @ Cxx_inverse  # (F, T, I, I)
        Y_hat = np.zeros_like(X)
        for i in range(I):
            for k in range(I):
                Y_hat[i] += G[..., i, k] * X[k]
        estimates[stem] = _istft(Y_hat, len(mixture))
    return _as_sources(estimates)


def reference(name, mixture, stems):
    if name == "MWF":
        return reference_mwf(mixture, stems)
    if name == "IBM":
        return reference_ibm(mixture, stems)
    return reference_irm(mixture, stems, {"IRM1": 1, "IRM2": 2}[name])


def _assert_close(got, expected, scale):
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < TOLERANCE * scale


# --------------------------------------------------------------------------- against the definitions


@pytest.mark.parametrize("block_frames", [4, oracles.BLOCK_FRAMES])
@pytest.mark.parametrize("name", ["IRM1", "IRM2", "IBM", "MWF"])
def test_oracle_equals_the_published_definition(signals, name, block_frames, monkeypatch):
    """Blocks of 4 frames (7 blocks) and the default (one block here) give the whole-signal result."""
    monkeypatch.setattr(oracles, "BLOCK_FRAMES", block_frames)
    mixture, stems = signals
    got = oracle_estimates(name, mixture, stems)
    vocals, accompaniment = reference(name, mixture, stems)
    scale = np.max(np.abs(mixture))
    assert set(got) == {"vocals", "accompaniment"}
    assert got["vocals"].shape == got["accompaniment"].shape == mixture.shape  # exact length
    _assert_close(got["vocals"], vocals, scale)
    _assert_close(got["accompaniment"], accompaniment, scale)
    # an oracle sees the true stems: its vocals are far closer to them than the mixture
    error = np.linalg.norm(got["vocals"] - stems["vocals"])
    assert error < 0.5 * np.linalg.norm(mixture - stems["vocals"])


@pytest.mark.parametrize("name", ["IRM1", "IRM2", "IBM", "MWF"])
def test_mono_tracks(signals, name, monkeypatch):
    monkeypatch.setattr(oracles, "BLOCK_FRAMES", 5)
    mixture, stems = signals
    mono_mixture = mixture[:, :1]
    mono_stems = {stem: audio[:, :1] for stem, audio in stems.items()}
    got = oracle_estimates(name, mono_mixture, mono_stems)
    vocals, accompaniment = reference(name, mono_mixture, mono_stems)
    scale = np.max(np.abs(mono_mixture))
    _assert_close(got["vocals"], vocals, scale)
    _assert_close(got["accompaniment"], accompaniment, scale)


def test_mix_is_the_mixture_over_four(signals):
    mixture, stems = signals
    got = oracle_estimates("MIX", mixture, stems)
    assert got["vocals"].dtype == got["accompaniment"].dtype == np.float64
    np.testing.assert_array_equal(got["vocals"], mixture / 4)
    np.testing.assert_array_equal(got["accompaniment"], 0.75 * mixture)
    got32 = oracle_estimates("MIX", mixture.astype(np.float32), stems)
    np.testing.assert_array_equal(got32["vocals"], mixture.astype(np.float32).astype(np.float64) / 4)


def test_block_stft_frames_are_the_whole_signal_frames(signals):
    mixture, _ = signals
    whole = _stft(mixture)
    assert oracles._nb_frames(len(mixture)) == whole.shape[-1]
    for first, last in [(0, 3), (2, 9), (20, whole.shape[-1])]:
        np.testing.assert_array_equal(oracles._stft_frames(mixture, first, last), whole[..., first:last])


# --------------------------------------------------------------------------- known signals


@pytest.mark.parametrize("name", ["IRM1", "IRM2", "IBM"])
def test_silent_stem_gets_silence(signals, name):
    mixture, stems = signals
    stems = {**stems, "vocals": np.zeros_like(mixture)}
    got = oracle_estimates(name, mixture, stems)
    assert not np.any(got["vocals"])  # mask 0 / (eps + ...) = 0 everywhere


def test_ibm_masks_are_binary(signals):
    mixture, stems = signals
    X = _stft(mixture)
    Y = {stem: _stft(audio) for stem, audio in stems.items()}
    estimates = oracles._ibm_filter(EPS)(X, Y)
    nonzero = np.abs(X) > 0
    for stem in SOURCES:
        # mask 0 or 1: every estimate bin is 0 or the mixture's
        assert np.all((estimates[stem] == 0) | (estimates[stem] == X))
    # and the binary decisions are those of |Y_j| / |X| against 0.5
    expected = np.abs(Y["vocals"]) / (EPS + np.abs(X)) > 0.5
    np.testing.assert_array_equal(estimates["vocals"] != 0, expected & nonzero)


def test_mwf_single_active_stem_returns_the_mixture(signals):
    """Three silent stems: MWF.py would return NaN (0 / 0 in its normalisation); the
    filter gives the whole mixture to the active stem and nothing to the others."""
    mixture, _ = signals
    silent = np.zeros_like(mixture)
    stems = {"vocals": mixture, "drums": silent, "bass": silent, "other": silent}
    got = oracle_estimates("MWF", mixture, stems)
    assert np.all(np.isfinite(got["vocals"]))
    assert not np.any(got["accompaniment"])
    # G = P R (eps + det)^-1 adj(P R): eps in the determinant damps the quietest bins a little
    assert np.linalg.norm(got["vocals"] - mixture) < 1e-3 * np.linalg.norm(mixture)
    # without it, the gain is the identity
    got = oracle_estimates("MWF", mixture, stems, eps=1e-30)
    assert np.max(np.abs(got["vocals"] - mixture)) < TOLERANCE * np.max(np.abs(mixture))


def test_mwf_normalisation_of_panned_mono_stems():
    """MWF.py's ``R * I / np.trace(R)`` (module docstring) divides column k of a rank-one
    ``R_j = c a a^H`` by ``c a_k^* (a_0 + a_1)``: both columns become ``a / (a_0 + a_1)``.
    Every panned mono stem then has the row space (1, 1), their sum ``Cxx`` is singular,
    and MWF cannot split such stems (real recordings are not rank one)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 4 * RATE))
    silent = np.zeros((4 * RATE, 2))
    stems = {"vocals": np.stack([a, 0.2 * a], 1), "drums": np.stack([0.3 * b, b], 1), "bass": silent,
             "other": silent}
    R = oracles._spatial_covariances(stems, silent.shape, EPS)
    for stem, gains in [("vocals", (1.0, 0.2)), ("drums", (0.3, 1.0))]:
        Rj = R[stem] - EPS * np.eye(2)
        np.testing.assert_allclose(Rj[:, :, 0], Rj[:, :, 1], rtol=1e-9)  # equal columns
        np.testing.assert_allclose(Rj[:, 1, 0] / Rj[:, 0, 0], gains[1] / gains[0], rtol=1e-9)  # along a
    mixture = stems["vocals"] + stems["drums"]
    vocals = oracle_estimates("MWF", mixture, stems)["vocals"]
    assert np.linalg.norm(vocals - stems["vocals"]) > 0.5 * np.linalg.norm(stems["vocals"])


def test_sigsep_trace_sums_numpys_default_axes():
    R = np.arange(12.0).reshape(3, 2, 2)
    # column k: R[0][0, k] + R[1][1, k]
    np.testing.assert_array_equal(oracles.sigsep_trace(R), [R[0, 0, 0] + R[1, 1, 0], R[0, 0, 1] + R[1, 1, 1]])


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_named(signals):
    mixture, stems = signals
    with pytest.raises(ValueError, match=r"unknown oracle 'IRM3'"):
        oracle_estimates("IRM3", mixture, stems)
    partial = {stem: stems[stem] for stem in ("vocals", "other")}
    with pytest.raises(ValueError, match=r"four MUSDB18 stems.*missing \['drums', 'bass'\]"):
        oracle_estimates("IRM2", mixture, partial)
    with pytest.raises(ValueError, match=r"stem 'bass' has shape \(100, 2\) but the mixture \(24123, 2\)"):
        oracle_estimates("MWF", mixture, {**stems, "bass": stems["bass"][:100]})
    with pytest.raises(ValueError, match=r"stem 'other' has shape \(2, 24123\)"):
        oracle_estimates("IBM", mixture, {**stems, "other": stems["other"].T})
    with pytest.raises(ValueError, match=r"\(nb_samples, nb_channels\).*\(24123,\)"):
        oracle_estimates("IRM1", mixture[:, 0], stems)
    with pytest.raises(ValueError, match=r"1000 samples.*2048"):
        short = {stem: audio[:1000] for stem, audio in stems.items()}
        oracle_estimates("IRM1", mixture[:1000], short)
    with pytest.raises(ValueError, match=r"MWF.*mono or stereo.*3 channels"):
        wide = {stem: np.tile(audio[:, :1], 3) for stem, audio in stems.items()}
        oracle_estimates("MWF", np.tile(mixture[:, :1], 3), wide)
    with pytest.raises(ValueError, match="mapping"):
        oracle_estimates("MIX", mixture, list(stems.values()))


# --------------------------------------------------------------------------- evaluation


def _write_track(root, name, mixture, stems):
    folder = root / "test" / name
    folder.mkdir(parents=True)
    for stem, audio in [("mixture", mixture), *stems.items()]:
        sf.write(folder / f"{stem}.wav", audio, RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def wav_track(tmp_path_factory):
    """One MUSDB18-HQ-layout test track (float WAVs, so the samples read back exactly)."""
    root = tmp_path_factory.mktemp("wav")
    stems = {stem: audio.astype(np.float32) for stem, audio in _random_stems(seed=5).items()}
    mixture = np.sum([stems[stem] for stem in SOURCES], axis=0, dtype=np.float32)
    _write_track(root, "Artist - Song", mixture, stems)
    (track,) = find_tracks(root, "test")
    return track


def test_load_track_reads_the_four_stems(wav_track):
    audio = load_track(wav_track)
    assert set(audio.stems) == set(SOURCES)
    for stem in SOURCES:
        expected = sf.read(wav_track.wav(stem), always_2d=True)[0]
        np.testing.assert_array_equal(audio.stems[stem], expected)
        assert audio.stems[stem].dtype == np.float64
    assert audio.references["vocals"] is audio.stems["vocals"]
    np.testing.assert_allclose(audio.references["accompaniment"],
                               audio.stems["drums"] + audio.stems["bass"] + audio.stems["other"], atol=1e-12)


def test_evaluate_oracle_writes_museval_json_and_refuses_old_scores(wav_track, tmp_path):
    eval_dir = tmp_path / "eval"
    method_dir = eval_dir / "IRM2"
    # scores of the earlier two-source IRM2 on the models' STFT, as evaluate_oracle wrote them
    (method_dir / "test").mkdir(parents=True)
    old = {"kind": "oracle", "oracle": "IRM2", "stft": {"n_fft": 4096, "n_hop": 1024},
           "museval": {"mode": "v4", "win": 1.0, "hop": 1.0}}
    (method_dir / "evaluation.json").write_text(json.dumps(old))
    stale = method_dir / "test" / f"{wav_track.name}.json"
    stale.write_text("{}")
    with pytest.raises(ValueError, match=r"other settings \(definition, stft differ.*overwrite=True"):
        ev.evaluate_oracle("IRM2", [wav_track], eval_dir, jobs=1, progress=False)
    assert stale.read_text() == "{}"

    (path,) = ev.evaluate_oracle("IRM2", [wav_track], eval_dir, jobs=1, progress=False, overwrite=True)
    assert path == stale
    data = json.loads(path.read_text())
    targets = {target["name"]: target["frames"] for target in data["targets"]}
    assert set(targets) == {"vocals", "accompaniment"}
    assert [frame["time"] for frame in targets["vocals"]] == [0, 1, 2]
    assert [frame["time"] for frame in targets["accompaniment"]] == [0, 1, 2]
    assert all(np.isfinite(frame["metrics"]["SDR"]) for frame in targets["accompaniment"])
    settings = json.loads((method_dir / "evaluation.json").read_text())
    assert settings["definition"] == "sigsep-mus-oracle (SiSEC 2018)"
    assert settings["stft"] == {"nperseg": 2048, "hop": 1024}


def test_oracle_on_a_track_without_all_stems_names_the_files(wav_track, tmp_path):
    partial = dataclasses.replace(
        wav_track, stems={k: v for k, v in wav_track.stems.items() if k not in ("drums", "bass")})
    audio = load_track(partial)  # still scored for models: accompaniment from what exists
    np.testing.assert_array_equal(audio.references["accompaniment"], audio.stems["other"])
    assert set(audio.stems) == {"vocals", "other"}
    with pytest.raises(ValueError, match=rf"'{re.escape(wav_track.name)}'.*has no drums\.wav, bass\.wav"):
        ev.evaluate_oracle("IRM1", [partial], tmp_path / "eval", jobs=1, progress=False)
