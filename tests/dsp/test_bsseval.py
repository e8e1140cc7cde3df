"""melunmix.dsp.bsseval: the fast BSS Eval v4 scorer against museval itself.

Every test runs museval (``museval.evaluate`` / ``museval.metrics.bss_eval`` /
``museval.eval_mus_track`` on an in-memory musdb track) on the same signals and compares
every window of every metric: equal to float64 round-off (1e-9 dB on these signals; 1e-6
with singular Gram matrices, 1e-3 where museval's own numbers move by ~1e-4 dB under a
1e-15 relative change of its inputs), NaN and inf in the same places, and the same museval
JSON. Signals are short and mostly at 8 kHz (museval works at any rate, windows in
seconds) so that museval stays fast.
"""

from __future__ import annotations

import warnings

import museval
import numpy as np
import pytest

from melunmix.dsp import bsseval

RATE = 8000
TOL_DB = 1e-9


# --------------------------------------------------------------------------- helpers


def _musdb_track(references: dict, rate: float = RATE, name: str = "song"):
    """An in-memory musdb track holding ``references`` (what eval_mus_track reads)."""
    import musdb

    track = musdb.MultiTrack(path="", name=name, subset="test", is_wav=True)
    track.rate = rate
    track.sources, track.targets = {}, {}
    for target, reference in references.items():
        source = musdb.Source(track, name=target, path="")
        source.audio = reference
        track.sources[target] = source
        track.targets[target] = musdb.Target(track, sources=[source], name=target)
    return track


def _museval(references, estimates, win, hop):
    """museval.evaluate (v4): SDR, ISR, SIR, SAR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return museval.evaluate(list(references), list(estimates), win=win, hop=hop, mode="v4")


def _assert_same(ours, theirs, tol=TOL_DB):
    # zip() stops at the shorter input: without this, a scorer that lost a metric would pass
    assert len(ours) == len(theirs) == len(bsseval.OUTPUT_ORDER), (len(ours), len(theirs))
    for name, a, b in zip(bsseval.OUTPUT_ORDER, ours, theirs):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, (name, a.shape, b.shape)
        assert np.array_equal(np.isnan(a), np.isnan(b)), (name, a, b)
        assert np.array_equal(np.isposinf(a), np.isposinf(b)), (name, a, b)
        assert np.array_equal(np.isneginf(a), np.isneginf(b)), (name, a, b)
        finite = np.isfinite(b)
        if finite.any():
            assert np.max(np.abs(a[finite] - b[finite])) < tol, (name, np.max(np.abs(a[finite] - b[finite])))


def _assert_same_json(references: dict, estimates: dict, win=1.0, hop=1.0, rate=RATE):
    track = _musdb_track(references, rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        theirs = museval.eval_mus_track(track, estimates, mode="v4", win=win, hop=hop)
    ours = bsseval.track_store(references, estimates, rate, win, hop, track_name="song")
    ours.validate()
    assert ours.json == theirs.json
    return ours


def _song(seconds: float, seed: int = 0, nchan: int = 2, rate: int = RATE):
    """Generated-like vocals / accompaniment: sums of sines (vibrato, chords) plus noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    vocals = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in (1, 2, 3))
    vocals *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2
    accomp = sum(0.4 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate((110, 165, 275, 330)))
    accomp += 0.2 * rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0)  # "drums"
    pan = np.linspace(0.3, 0.7, nchan) if nchan > 1 else np.array([1.0])
    vocals = vocals[:, None] * pan[None] + 0.01 * rng.standard_normal((n, nchan))
    accomp = accomp[:, None] * pan[::-1][None] + 0.01 * rng.standard_normal((n, nchan))
    return vocals, accomp


def _separate(vocals, accomp, leak=0.15, noise=0.02, seed=1):
    """Estimates with interference, filtering and artefacts; accompaniment = mixture - vocals."""
    rng = np.random.default_rng(seed)
    mix = vocals + accomp
    smeared = np.convolve(vocals[:, 0], [0.6, 0.3, 0.1], mode="same")[:, None] * np.ones(vocals.shape[1])
    est_v = 0.7 * vocals + 0.3 * smeared + leak * accomp + noise * rng.standard_normal(vocals.shape)
    return est_v, mix - est_v


# --------------------------------------------------------------------------- numbers


def test_noise_stereo_matches_museval():
    rng = np.random.default_rng(0)
    n = int(3.4 * RATE)  # not a whole number of windows
    refs = [rng.standard_normal((n, 2)) for _ in range(2)]
    ests = [refs[0] + 0.3 * refs[1] + 0.1 * rng.standard_normal((n, 2)),
            refs[1] + 0.5 * rng.standard_normal((n, 2))]
    ours = bsseval.evaluate(refs, ests, RATE, RATE)
    assert ours[0].shape == (2, 3)
    _assert_same(ours, _museval(refs, ests, RATE, RATE))
    _assert_same_json({"vocals": refs[0], "accompaniment": refs[1]},
                      {"vocals": ests[0], "accompaniment": ests[1]})


def test_generated_song_with_silent_and_quiet_vocals():
    vocals, accomp = _song(4.5, seed=2)
    vocals[RATE:2 * RATE] = 0.0  # a silent window -> NaN for every target
    vocals[3 * RATE:4 * RATE] *= 1e-6  # near-silent: numbers, very low ones
    est_v, est_a = _separate(vocals, accomp)
    refs, ests = {"vocals": vocals, "accompaniment": accomp}, {"vocals": est_v, "accompaniment": est_a}
    scores = bsseval.score_track(refs, ests, RATE)
    assert list(scores) == ["vocals", "accompaniment"]
    for target in scores:
        assert list(scores[target]) == ["SDR", "SIR", "ISR", "SAR"]
        assert np.isnan(scores[target]["SDR"][1]) and np.isfinite(scores[target]["SDR"][[0, 2, 3]]).all()
    ours = tuple(np.stack([scores[t][m] for t in scores]) for m in bsseval.OUTPUT_ORDER)
    _assert_same(ours, _museval([vocals, accomp], [est_v, est_a], RATE, RATE))
    _assert_same_json(refs, ests)


def test_silent_estimate_window_is_nan_everywhere():
    vocals, accomp = _song(3.0, seed=3)
    est_v, est_a = _separate(vocals, accomp)
    est_a[2 * RATE:] = 0.0
    ours = bsseval.evaluate([vocals, accomp], [est_v, est_a], RATE, RATE)
    assert np.isnan(ours[0][:, 2]).all() and np.isfinite(ours[0][:, :2]).all()
    _assert_same(ours, _museval([vocals, accomp], [est_v, est_a], RATE, RATE))


def test_channels_cancelling_count_as_silent():
    # museval's silence test sums the channels: L = -R is "silent" there too
    vocals, accomp = _song(3.0, seed=4)
    vocals[RATE:2 * RATE, 1] = -vocals[RATE:2 * RATE, 0]
    est_v, est_a = _separate(vocals, accomp)
    ours = bsseval.evaluate([vocals, accomp], [est_v, est_a], RATE, RATE)
    assert np.isnan(ours[0][:, 1]).all()
    _assert_same(ours, _museval([vocals, accomp], [est_v, est_a], RATE, RATE))


def test_estimate_equal_to_reference():
    """SDR inf on both sides; ISR, SIR, SAR are made of round-off there (250-320 dB in
    museval, and in ours, with other digits), so only their size is compared."""
    vocals, accomp = _song(2.5, seed=5)
    refs = [vocals, accomp]
    ours = bsseval.evaluate(refs, [vocals.copy(), accomp.copy()], RATE, RATE)
    theirs = _museval(refs, [vocals.copy(), accomp.copy()], RATE, RATE)
    assert len(ours) == len(theirs) == len(bsseval.OUTPUT_ORDER)
    assert np.isposinf(ours[0]).all() and np.isposinf(theirs[0]).all()
    for a, b in zip(ours[1:], theirs[1:]):
        assert a.shape == b.shape == (2, 2) and (a > 200).all() and (b > 200).all()
    # museval's JSON turns inf into NaN: so does ours (same TrackStore)
    store = bsseval.track_store({"vocals": vocals, "accompaniment": accomp},
                                {"vocals": vocals, "accompaniment": accomp}, RATE)
    sdr = [float(frame["metrics"]["SDR"]) for t in store.scores["targets"] for frame in t["frames"]]
    assert len(sdr) == 2 * 2 and np.isnan(sdr).all()  # 2 targets x 2 windows of 1 s, every one NaN


@pytest.mark.parametrize("seconds", [0.6, 1.0, 1.0 + 1 / RATE, 2.0])
def test_short_tracks(seconds):
    vocals, accomp = _song(seconds, seed=6)
    est_v, est_a = _separate(vocals, accomp)
    ours = bsseval.evaluate([vocals, accomp], [est_v, est_a], RATE, RATE)
    assert ours[0].shape == (2, max(1, int(seconds)))
    _assert_same(ours, _museval([vocals, accomp], [est_v, est_a], RATE, RATE))


def test_mono():
    vocals, accomp = _song(3.3, seed=7, nchan=1)
    est_v, est_a = _separate(vocals, accomp)
    _assert_same(bsseval.evaluate([vocals, accomp], [est_v, est_a], RATE, RATE),
                 _museval([vocals, accomp], [est_v, est_a], RATE, RATE))
    _assert_same_json({"vocals": vocals, "accompaniment": accomp}, {"vocals": est_v, "accompaniment": est_a})


def test_band_limited_song_at_44k():
    """Band-limited signals over a faint noise floor (-120 dB) at 44.1 kHz make the Gram
    matrix ill-conditioned, as music does: museval's own numbers then move by ~1e-4 dB
    when its references are multiplied by 1 + 1e-15. Ours agree with museval's to that
    round-off (the issue's tolerance: 1e-2 dB)."""
    import scipy.signal

    rate = 44100
    vocals, accomp = _song(2.0, seed=20, rate=rate)
    sos = scipy.signal.butter(10, 3000, fs=rate, output="sos")
    rng = np.random.default_rng(21)
    vocals, accomp = (scipy.signal.sosfiltfilt(sos, x, axis=0) + 1e-6 * rng.standard_normal(x.shape)
                      for x in (vocals, accomp))
    vocals[rate:] = 0.0  # a silent window
    est_v, est_a = _separate(vocals, accomp)
    theirs = _museval([vocals, accomp], [est_v, est_a], rate, rate)
    nudged = _museval([vocals * (1 + 1e-15), accomp], [est_v, est_a], rate, rate)
    museval_noise = max(np.nanmax(np.abs(a - b)) for a, b in zip(nudged, theirs))
    assert museval_noise > 1e-7  # ill-conditioned indeed
    ours = bsseval.evaluate([vocals, accomp], [est_v, est_a], rate, rate)
    assert np.isnan(ours[0][:, 1]).all()
    _assert_same(ours, theirs, tol=1e-3)


def test_dual_mono_and_silent_channel():
    """Singular Gram matrices (identical channels, a silent channel): the projections, and
    so the metrics, still agree."""
    vocals, accomp = _song(3.0, seed=8)
    vocals[:, 1] = vocals[:, 0]
    accomp[:, 1] = 0.0
    est_v, est_a = _separate(vocals, accomp)
    _assert_same(bsseval.evaluate([vocals, accomp], [est_v, est_a], RATE, RATE),
                 _museval([vocals, accomp], [est_v, est_a], RATE, RATE), tol=1e-6)


def test_overlapping_windows_and_gaps():
    rng = np.random.default_rng(9)
    n = int(2.7 * RATE)
    refs = np.stack([rng.standard_normal((n, 2)) for _ in range(2)])
    ests = refs + 0.2 * refs[::-1] + 0.1 * rng.standard_normal(refs.shape)
    for win, hop in [(RATE, RATE // 2), (RATE // 2, 3 * RATE // 4), (np.inf, np.inf)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            theirs = museval.metrics.bss_eval(refs, ests, window=win, hop=hop)[:4]
        _assert_same(bsseval.bss_eval(refs, ests, win, hop), theirs)


def test_three_targets_with_accompaniment():
    """vocals + drums scored together (drums kept), then vocals + accompaniment: museval's order."""
    vocals, accomp = _song(2.4, seed=10)
    hits = (np.arange(len(vocals)) % 800 < 200)[:, None]
    drums = 0.5 * np.random.default_rng(11).standard_normal(vocals.shape) * hits
    refs = {"vocals": vocals, "drums": drums, "accompaniment": accomp + drums}
    est_v, est_a = _separate(vocals, accomp + drums)
    ests = {"vocals": est_v, "drums": 0.8 * drums + 0.1 * accomp, "accompaniment": est_a}
    assert list(bsseval.score_track(refs, ests, RATE)) == ["drums", "vocals", "accompaniment"]
    _assert_same_json(refs, ests)


def test_three_targets_without_accompaniment():
    vocals, accomp = _song(2.2, seed=12)
    rng = np.random.default_rng(13)
    bass = np.sin(2 * np.pi * 55 * np.arange(len(vocals)) / RATE)[:, None] * [0.5, 0.5]
    bass += 0.01 * rng.standard_normal(vocals.shape)
    refs = [vocals, accomp, bass]
    ests = [r + 0.2 * refs[(i + 1) % 3] + 0.05 * rng.standard_normal(r.shape) for i, r in enumerate(refs)]
    names = ["vocals", "drums", "bass"]
    store = _assert_same_json(dict(zip(names, refs)), dict(zip(names, ests)))  # one 3-source evaluation
    assert [t["name"] for t in store.scores["targets"]] == names
    assert all(len(t["frames"]) == 2 for t in store.scores["targets"])


def test_padding_and_float32():
    """Estimates of another length are padded / cut as museval does; float32 input is read
    exactly (museval converts to float64 inside)."""
    vocals, accomp = _song(2.5, seed=14)
    est_v, est_a = _separate(vocals, accomp)
    refs = [vocals.astype(np.float32), accomp.astype(np.float32)]
    longer = [np.pad(x, [(0, 500), (0, 0)]) for x in (est_v, est_a)]
    for ests in ([est_v[:-300], est_a[:-300]], longer):
        ests = [e.astype(np.float32) for e in ests]
        _assert_same(bsseval.evaluate(refs, ests, RATE, RATE), _museval(refs, ests, RATE, RATE))


def test_chunked_passes_match(monkeypatch):
    """Small blocks and chunks (several chunks, a partial last one) change nothing."""
    vocals, accomp = _song(4.3, seed=15)
    est_v, est_a = _separate(vocals, accomp)
    refs, ests = [vocals, accomp], [est_v, est_a]
    whole = bsseval.evaluate(refs, ests, RATE, RATE)
    monkeypatch.setattr(bsseval, "_BLOCK_FFT", 2048)
    monkeypatch.setattr(bsseval, "_CHUNK_SAMPLES", 5000)
    monkeypatch.setattr(bsseval, "_WINDOWS_CHUNK_SAMPLES", 2 * RATE)
    chunked = bsseval.evaluate(refs, ests, RATE, RATE)
    _assert_same(chunked, whole, tol=1e-10)
    _assert_same(chunked, _museval(refs, ests, RATE, RATE))


# --------------------------------------------------------------------------- API


def test_silent_source_raises_like_museval():
    vocals, accomp = _song(2.0, seed=16)
    est_v, est_a = _separate(vocals, accomp)
    for refs, ests in (([vocals, 0 * accomp], [est_v, est_a]), ([vocals, accomp], [est_v, 0 * est_a])):
        with pytest.raises(ValueError, match="non-silent"):
            _museval(refs, ests, RATE, RATE)
        with pytest.raises(ValueError, match="non-silent"):
            bsseval.evaluate(refs, ests, RATE, RATE)


def test_bad_arguments_raise():
    vocals, accomp = _song(1.5, seed=19)
    with pytest.raises(ValueError, match="should match"):
        bsseval.bss_eval([vocals, accomp], [vocals, accomp[:, :1]], RATE, RATE)
    with pytest.raises(ValueError, match="whole number of samples"):
        bsseval.bss_eval([vocals, accomp], [vocals, accomp], RATE + 0.5, RATE)
    with pytest.raises(ValueError, match="whole number of samples"):
        bsseval.bss_eval([vocals, accomp], [vocals, accomp], RATE, 0)


def test_single_target_warns_and_scores_nothing():
    vocals, _ = _song(1.5, seed=17)
    with pytest.warns(UserWarning, match="at least two estimates"):
        assert bsseval.score_track({"vocals": vocals}, {"vocals": vocals}, RATE) == {}


def test_eval_mus_track_drop_in_writes_museval_json(tmp_path):
    vocals, accomp = _song(2.3, seed=18)
    est_v, est_a = _separate(vocals, accomp)
    refs = {"vocals": vocals, "accompaniment": accomp}
    ests = {"vocals": est_v, "accompaniment": est_a, "other": est_a}  # no reference: ignored
    track = _musdb_track(refs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        museval.eval_mus_track(track, ests, output_dir=str(tmp_path / "museval"))
    bsseval.eval_mus_track(track, ests, output_dir=str(tmp_path / "ours"))
    ours = (tmp_path / "ours" / "test" / "song.json").read_text()
    assert ours == (tmp_path / "museval" / "test" / "song.json").read_text()
    store = museval.EvalStore()
    store.add_eval_dir(tmp_path / "ours")
    assert set(store.df["target"]) == {"vocals", "accompaniment"}
