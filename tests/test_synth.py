"""The built-in dataset generator: real renders on disk, read back with soundfile and musdb."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.signal
import soundfile as sf
import yaml

from melunmix import synth
from melunmix.base.names import SOURCES

SR = 44100
DURATION = 6.0
PARAMS = dict(nb_train=2, nb_valid=1, nb_test=1, duration=DURATION, seed=3)
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)[0]
            for name in ("mixture", "vocals", "drums", "bass", "other")}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return synth.make_dataset(tmp_path_factory.mktemp("gen") / "data", progress=False, **PARAMS)


@pytest.fixture(scope="module")
def manifest(dataset) -> dict:
    return json.loads((dataset / "dataset.json").read_text())


def test_layout_and_musdb_splits(dataset, manifest):
    import musdb

    names = {split: [t["name"] for t in manifest["tracks"] if t["split"] == split] for split in ("train", "valid", "test")}
    assert [len(names[s]) for s in ("train", "valid", "test")] == [1, 1, 1]
    setup = yaml.safe_load((dataset / "setup.yaml").read_text())
    assert setup["validation_tracks"] == names["valid"]

    train = musdb.DB(str(dataset), is_wav=True, subsets="train", split="train", setup_file="setup.yaml")
    valid = musdb.DB(str(dataset), is_wav=True, subsets="train", split="valid", setup_file="setup.yaml")
    test = musdb.DB(str(dataset), is_wav=True, subsets="test", setup_file="setup.yaml")
    everything = musdb.DB(str(dataset), is_wav=True)  # musdb's own setup: every WAV folder loads
    assert [t.name for t in train] == names["train"]
    assert [t.name for t in valid] == names["valid"]
    assert [t.name for t in test] == names["test"]
    assert len(everything) == 3

    track = valid[0]  # musdb reads through ffmpeg as 16-bit: equal to the stems' sum within that
    mixture = track.audio
    assert track.rate == SR and mixture.shape == (round(DURATION * SR), 2)
    total = sum(track.sources[name].audio for name in ("vocals", "drums", "bass", "other"))
    np.testing.assert_allclose(mixture, total, atol=4 * 2.0**-15)
    np.testing.assert_allclose(track.targets["accompaniment"].audio + track.targets["vocals"].audio, mixture,
                               atol=4 * 2.0**-15)


def test_files_are_float_stereo_exact_sums_without_clipping(dataset, manifest):
    for entry in manifest["tracks"]:
        folder = dataset / entry["subset"] / entry["name"]
        for name in synth.TRACK_FILES:
            info = sf.info(folder / name)
            assert (info.samplerate, info.channels, info.subtype) == (SR, 2, "FLOAT")
            assert info.frames == round(DURATION * SR) == entry["nb_samples"]
        audio = _read(folder)
        total = audio["vocals"] + audio["drums"]
        total = total + audio["bass"]
        total = total + audio["other"]
        np.testing.assert_array_equal(audio["mixture"], total)
        for name, signal in audio.items():
            assert np.isfinite(signal).all()
            assert np.abs(signal).max() <= synth.PEAK_LIMIT, (entry["name"], name)
            # every stem plays: louder than -40 dBFS RMS over the song
            assert np.sqrt(np.mean(signal**2)) > 0.01, (entry["name"], name)
        # panning: the accompaniment is not the same in both channels
        assert not np.allclose(audio["other"][:, 0], audio["other"][:, 1])


def test_vocals_silent_in_whole_sections_and_sung_in_the_others(dataset, manifest):
    assert manifest["reverb_tail"] == synth.REVERB_TAIL
    nb_tail = round(synth.REVERB_TAIL * SR)
    for entry in manifest["tracks"]:
        vocals = _read(dataset / entry["subset"] / entry["name"])["vocals"]
        sections = entry["sections"]
        assert sections[0]["start"] == 0 and math.isclose(sections[-1]["end"], DURATION)
        assert all(a["end"] == b["start"] for a, b in zip(sections, sections[1:]))
        assert sections[0]["name"] == "intro" and not sections[0]["vocals"]
        assert any(s["vocals"] for s in sections)
        # Only a sung section and the reverb tail after it may sound; the rest is exact
        # digital silence (museval skips all-zero windows).
        may_sound = np.zeros(len(vocals), dtype=bool)
        for section in sections:
            start, end = int(round(section["start"] * SR)), int(round(section["end"] * SR))
            if section["vocals"]:
                assert np.abs(vocals[start:end]).max() > 0.02, (entry["name"], section)
                may_sound[start:end + nb_tail] = True
        assert not vocals[~may_sound].any(), entry["name"]
        assert not vocals[:int(round(sections[0]["end"] * SR))].any(), entry["name"]  # the intro, whole


def test_vocal_line_is_one_voice_in_the_key_at_the_scored_pitches(dataset, manifest):
    entry = manifest["tracks"][0]
    song = synth.arrange_song(PARAMS["seed"], entry["split"], 0, DURATION)
    assert song.name == entry["name"]
    assert len(song.parts["vocals"]) == 1  # no backing voice in this song: yin hears one voice
    lead = song.parts["vocals"][0]
    notes = lead.notes
    # the singer sings the written line whole octaves away, into its voice type's range
    assert lead.singer.transpose % 12 == 0 and entry["voice"]["lead"]["transpose"] == lead.singer.transpose
    assert all(a.end <= b.start for a, b in zip(notes, notes[1:]))  # monophonic score
    tonic, mode = entry["key"].split()
    scale = {(KEYS.index(tonic) + step) % 12 for step in SCALES[mode]}
    assert {n.pitch % 12 for n in notes} <= scale

    vocals = _read(dataset / entry["subset"] / entry["name"])["vocals"].mean(axis=1)
    hop = 512
    f0 = librosa.yin(vocals, fmin=80, fmax=1000, sr=SR, frame_length=2048, hop_length=hop)
    times = librosa.frames_to_time(np.arange(len(f0)), sr=SR, hop_length=hop)
    errors = []
    for note in notes:
        # notes long enough for the previous note's release to have faded from yin's window
        inside = (times > note.start + 0.1) & (times < note.end - 0.03)
        if note.end - note.start >= 0.3 and inside.sum() >= 3:
            errors.append(np.median(librosa.hz_to_midi(f0[inside])) - note.pitch - lead.singer.transpose)
    assert len(errors) >= 2
    assert np.mean(np.abs(errors) < 0.5) >= 0.8, np.round(errors, 2)


def test_same_arguments_same_bytes_and_seed_matters(dataset, tmp_path):
    again = synth.make_dataset(tmp_path / "again", progress=False, **PARAMS)
    assert _hashes(again) == _hashes(dataset)
    other = synth.make_dataset(tmp_path / "other", progress=False, **{**PARAMS, "seed": 4, "nb_train": 1,
                                                                         "nb_valid": 0})
    audio_other = {k: v for k, v in _hashes(other).items() if k.endswith(".wav")}
    assert not set(audio_other.values()) & set(_hashes(dataset).values())


def test_manifest_fingerprint_matches_the_files(dataset, manifest):
    assert manifest["parameters"] == {**PARAMS, "duration": DURATION, "sample_rate": SR,
                                      "generator_version": synth.GENERATOR_VERSION}
    digest = hashlib.sha256()
    for entry in manifest["tracks"]:
        for name in synth.TRACK_FILES:
            path = dataset / entry["subset"] / entry["name"] / name
            file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            assert entry["sha256"][name] == file_hash
            digest.update(f"{entry['subset']}/{entry['name']}/{name}\t{file_hash}\n".encode())
    assert manifest["fingerprint"] == digest.hexdigest()
    card = (dataset / "README.md").read_text()
    assert "TimGM6mb.sf2" in card and "GPL" in card and "MIT" in card
    assert "**reverb**" in card and f"exactly silent from {synth.REVERB_TAIL:g} s" in card
    assert "## The voice" in card and "Csound manual" in card and "Rosenberg" in card and "KlattGrid" in card
    for entry in manifest["tracks"]:
        lead = entry["voice"]["lead"]
        assert lead["voice_type"] in entry["instruments"]["vocals"][0] and lead["voice_type"] in card
        assert len(entry["voice"]["lyrics"].split()) == len(synth.arrange_song(
            PARAMS["seed"], entry["split"], int(entry["name"].split()[2]) - 1, DURATION).parts["vocals"][0].notes)
    assert all(entry["name"] in card for entry in manifest["tracks"])


@pytest.mark.parametrize("marker", ["dataset.json", ".make_dataset.json"])
def test_dataset_of_another_generator_version_is_refused(dataset, tmp_path, marker):
    # What an older generator left: a complete dataset, or an interrupted one (only the
    # parameters file of the run in progress), both recording their generator version.
    old = tmp_path / "old"
    shutil.copytree(dataset, old)
    manifest = json.loads((old / "dataset.json").read_text())
    manifest["parameters"]["generator_version"] = synth.GENERATOR_VERSION - 1
    if marker != "dataset.json":
        (old / "dataset.json").unlink()
    (old / marker).write_text(json.dumps(manifest))
    before = _hashes(old)
    message = (rf"generator version {synth.GENERATOR_VERSION - 1}; this code is version {synth.GENERATOR_VERSION}"
               rf".*Delete {re.escape(str(old))} to regenerate")
    with pytest.raises(ValueError, match=message):
        synth.make_dataset(old, progress=False, **PARAMS)
    assert _hashes(old) == before


def test_rerun_with_same_arguments_does_nothing(dataset):
    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    assert synth.make_dataset(dataset, progress=False, **PARAMS) == dataset
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before


def test_rerun_with_other_arguments_is_refused(dataset):
    before = _hashes(dataset)
    with pytest.raises(ValueError, match=r"duration=6\.0 there, 7\.0 asked.*another output folder"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "duration": 7.0})
    with pytest.raises(ValueError, match="nb_test=1 there, 2 asked"):
        synth.make_dataset(dataset, progress=False, **{**PARAMS, "nb_test": 2})
    assert _hashes(dataset) == before


def test_interrupted_run_resumes_with_only_missing_tracks(tmp_path):
    params = dict(nb_train=1, nb_valid=0, nb_test=1, duration=4.0, seed=11, progress=False)
    root = synth.make_dataset(tmp_path / "d", **params)
    complete = _hashes(root)
    train_track = next((root / "train").iterdir())
    test_track = next((root / "test").iterdir())
    # What a kill leaves: no dataset.json, a track never renamed into place, and a
    # half-written copy of it in the staging folder.
    (root / "dataset.json").unlink()
    staging = root / ".partial" / test_track.name
    staging.mkdir(parents=True)
    (staging / "mixture.wav").write_bytes(b"RIFF")
    shutil.rmtree(test_track)
    kept = train_track / "vocals.wav"
    kept_mtime = kept.stat().st_mtime_ns

    synth.make_dataset(tmp_path / "d", **params)
    assert _hashes(root) == complete
    assert kept.stat().st_mtime_ns == kept_mtime  # the finished track was not rendered again
    assert not (root / ".partial").exists()


def test_other_sample_rate(tmp_path):
    root = synth.make_dataset(tmp_path / "d", nb_train=1, nb_valid=0, nb_test=1, duration=4.0, sample_rate=22050,
                              progress=False)
    setup = yaml.safe_load((root / "setup.yaml").read_text())
    assert setup["sample_rate"] == 22050
    for path in root.rglob("*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.frames) == (22050, 4 * 22050)


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"nb_train": 0}, "nb_train"),
        ({"nb_test": 0}, "nb_test"),
        ({"nb_train": 2, "nb_valid": 2}, r"nb_valid, --valid: 2\) must be fewer .*nb_train, --train: 2\)"),
        ({"nb_valid": -1}, "nb_valid"),
        ({"nb_train": 2.5}, "nb_train"),
        ({"duration": 1.0}, "duration"),
        ({"duration": float("nan")}, "duration"),
        ({"duration": 10_000.0}, "duration"),
        ({"seed": -1}, "seed"),
        ({"sample_rate": 100}, "sample_rate"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, changes, argument):
    with pytest.raises(ValueError, match=argument):
        synth.make_dataset(tmp_path / "d", progress=False, **{**PARAMS, **changes})
    assert not (tmp_path / "d").exists()


def test_an_output_path_that_is_a_file_names_the_flag(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    with pytest.raises(NotADirectoryError, match=rf"output folder {taken} \(--out, out_dir\) is a file"):
        synth.make_dataset(taken, progress=False, **PARAMS)
    assert taken.read_text() == "mine"


def test_unrelated_folder_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        synth.make_dataset(tmp_path, progress=False, **PARAMS)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("duration, nb_songs", [(synth.MIN_DURATION, 40), (5.0, 40), (9.0, 40), (45.0, 10),
                                                (240.0, 3)])
def test_every_arrangement_has_an_unsung_intro_and_sung_sections(duration, nb_songs):
    for index in range(nb_songs):
        song = synth.arrange_song(index, ("train", "valid", "test")[index % 3], index, duration)
        sections = song.sections
        assert sections[0].start == 0 and math.isclose(sections[-1].end, duration)
        assert not sections[0].sung and any(s.sung for s in sections)
        notes = song.parts["vocals"][0].notes
        for section in sections:
            inside = [n for n in notes if section.start <= n.start < section.end]
            assert bool(inside) == section.sung
            assert all(n.end <= section.end for n in inside)
        assert 84 <= song.bpm <= 140


@pytest.mark.parametrize("sample_rate", [44100, 16000])
def test_reverb_impulse_response_decays_at_its_rt60_with_independent_channels(sample_rate):
    reverb = synth.Reverb(rt60=0.5, predelay=0.02, wet_db=-12.0, damping_hz=3000.0, seed=7)
    response = synth.reverb_impulse_response(reverb, sample_rate)
    nb_predelay = round(0.02 * sample_rate)
    assert response.dtype == np.float32 and response.shape == (round(0.52 * sample_rate), 2)
    assert not response[:nb_predelay].any() and response[nb_predelay].all()
    tail = response[nb_predelay:].astype(np.float64)
    np.testing.assert_allclose(np.sum(tail**2, axis=0), 10 ** (-12 / 10), rtol=1e-5)
    # Schroeder's backward-integrated energy; its slope from -5 to -25 dB scaled to 60 dB (T20)
    edc_db = 10 * np.log10(np.cumsum(tail[::-1] ** 2, axis=0)[::-1] / np.sum(tail**2, axis=0))
    seconds = np.arange(len(tail)) / sample_rate
    for channel in edc_db.T:
        fit = (channel <= -5) & (channel >= -25)
        assert -60 / np.polyfit(seconds[fit], channel[fit], 1)[0] == pytest.approx(0.5, rel=0.1)
    assert abs(np.corrcoef(tail[:, 0], tail[:, 1])[0, 1]) < 0.1  # independent noise per channel
    # damping: the high band is weaker than the low one by the one-pole low-pass's response
    freqs = np.fft.rfftfreq(len(response), 1 / sample_rate)
    power = np.abs(np.fft.rfft(response.astype(np.float64), axis=0)) ** 2
    pole = np.exp(-2 * np.pi * 3000 / sample_rate)
    _, gain = scipy.signal.freqz([1 - pole], [1, -pole], worN=freqs, fs=sample_rate)
    low, high = freqs < 500, (freqs > 0.3 * sample_rate) & (freqs < 0.45 * sample_rate)
    expected_db = 10 * np.log10(np.mean(np.abs(gain[high]) ** 2) / np.mean(np.abs(gain[low]) ** 2))
    measured_db = 10 * np.log10(power[high].mean(axis=0) / power[low].mean(axis=0))
    assert expected_db < -4 and np.all(np.abs(measured_db - expected_db) < 3), (measured_db, expected_db)
    np.testing.assert_array_equal(response, synth.reverb_impulse_response(reverb, sample_rate))
    assert not np.allclose(response, synth.reverb_impulse_response(dataclasses.replace(reverb, seed=8), sample_rate))


def test_reverb_tail_is_bounded_and_a_missing_tail_is_refused():
    long = synth.Reverb(rt60=3.0, predelay=0.01, wet_db=-10.0, damping_hz=8000.0, seed=1)
    assert synth.reverb_impulse_response(long, SR).shape == (round(synth.REVERB_TAIL * SR), 2)
    with pytest.raises(ValueError, match="rt60"):
        synth.reverb_impulse_response(dataclasses.replace(long, rt60=0.0), SR)


@pytest.mark.parametrize("nb_samples", [9000, 70001])  # 2 and 12 chunks of 4 FFT blocks
def test_reverb_adds_the_mean_of_the_channels_convolved_with_each_tail_and_keeps_silence_exact(nb_samples):
    reverb = synth.Reverb(rt60=0.03, predelay=0.002, wet_db=-6.0, damping_hz=5000.0, seed=4)
    sample_rate = 16000
    response = synth.reverb_impulse_response(reverb, sample_rate).astype(np.float64)
    nb_taps = len(response)
    rng = np.random.default_rng(0)
    dry = rng.standard_normal((nb_samples, 2)).astype(np.float32)
    dry[:1000] = 0.0  # silent start
    dry[3000:3000 + 2 * nb_taps] = 0.0  # a gap longer than the tail
    dry[-2 * nb_taps:] = 0.0  # silent end
    dry[3000 - 1] = 0.0, 0.25  # a lone sample in one channel still reaches both tails
    wet = synth.add_reverb(dry.copy(), reverb, sample_rate)
    send = dry.astype(np.float64).mean(axis=1)
    expected = dry + np.stack([np.convolve(send, response[:, c])[:nb_samples] for c in range(2)], axis=1)
    np.testing.assert_allclose(wet, expected, atol=2e-5 * np.abs(expected).max())
    for start, end in [(0, 1000), (3000 - 1 + nb_taps, 3000 + 2 * nb_taps), (nb_samples - nb_taps, nb_samples)]:
        assert not wet[start:end].any(), (start, end)
    assert wet[3000 - 1 + nb_taps - 1].all()  # the tail of the last sample before the gap
    assert wet.dtype == np.float32


def _unpredictable_db(left: np.ndarray, right: np.ndarray, nb_taps: int = 512) -> float:
    """Energy of ``right`` left over by the best ``nb_taps``-tap FIR filter of ``left``, in dB
    of ``right``'s energy: BSS Eval v4 (museval) allows 512-tap distortion filters, so a
    channel this predicts (very negative dB) is linearly dependent on the other for it."""
    left, right = left.astype(np.float64), right.astype(np.float64)
    nb_fft = scipy.fft.next_fast_len(2 * len(left))
    spectrum = np.fft.rfft(left, nb_fft)
    auto = np.fft.irfft(np.abs(spectrum) ** 2, nb_fft)[:nb_taps]
    cross = np.fft.irfft(np.conj(spectrum) * np.fft.rfft(right, nb_fft), nb_fft)[:nb_taps]
    # Normal equations of right[n] ~ sum_k h[k] left[n - k] (Toeplitz: Levinson, no BLAS);
    # the tiny ridge keeps them defined in the bands the soundfont leaves empty and moves
    # the least residual by at most 1e-9 of left's energy times |h|^2.
    auto[0] *= 1 + 1e-9
    taps = scipy.linalg.solve_toeplitz(auto, cross)
    mismatch = scipy.linalg.matmul_toeplitz(auto, taps) - cross
    assert np.linalg.norm(mismatch) <= 1e-6 * np.linalg.norm(cross)  # solved: the residual below is the least
    residual = right - scipy.signal.fftconvolve(left, taps)[:len(left)]
    return float(10 * np.log10(np.sum(residual**2) / np.sum(right**2)))


def test_reverb_makes_every_stems_channels_linearly_independent(dataset, manifest):
    entry = manifest["tracks"][0]
    song = synth.arrange_song(PARAMS["seed"], entry["split"], 0, DURATION)
    written = _read(dataset / entry["subset"] / entry["name"])
    assert entry["reverb"] == {name: {"rt60": r.rt60, "predelay": r.predelay, "wet_db": r.wet_db,
                                      "damping_hz": r.damping_hz} for name, r in song.reverb.items()}
    for name in SOURCES:
        assert _unpredictable_db(*written[name].T) > -30, name
    # Without the reverb (generator version 1) this song's voice is one signal panned.
    dry = synth.render_song(dataclasses.replace(song, reverb=None), SR)["vocals"]
    assert _unpredictable_db(*dry.T) < -60


def _ratio_mask_oracle(sources: list[np.ndarray], mixture: np.ndarray, nb_fft: int = 4096, nb_hop: int = 1024):
    """Oracle estimates (IRM1 of SiSEC 2018): the mixture's STFT weighted by |S_j| / sum_k |S_k|.

    ``sources`` and ``mixture`` have shape (nb_samples, nb_channels); returns one estimate
    of that shape per source.
    """
    def stft(x):
        return scipy.signal.stft(x.T.astype(np.float64), nperseg=nb_fft, noverlap=nb_fft - nb_hop)[2]

    magnitudes = [np.abs(stft(s)) for s in sources]
    total = np.maximum(sum(magnitudes), 1e-12)
    spectrum = stft(mixture)
    return [scipy.signal.istft(m / total * spectrum, nperseg=nb_fft, noverlap=nb_fft - nb_hop)[1].T[:len(mixture)]
            for m in magnitudes]


def test_museval_scores_do_not_move_when_the_references_are_rounded_to_16_bit(dataset, manifest):
    # Before the reverb, this track's oracle scored vocals SIR 1.9 dB with float references
    # and 21.0 dB with 16-bit ones (ISR -1.9 vs 15.6) while SDR stayed put.
    import museval

    entry = manifest["tracks"][0]
    audio = _read(dataset / entry["subset"] / entry["name"])
    references = [audio["vocals"], (audio["drums"] + audio["bass"]) + audio["other"]]
    estimates = np.stack(_ratio_mask_oracle(references, audio["mixture"]))
    scores = {}
    for label, refs in (("float", references), ("16 bit", [np.round(r * 2**15) / 2**15 for r in references])):
        sdr, isr, sir, _ = museval.evaluate(np.stack(refs), estimates, win=SR, hop=SR)
        scores[label] = {"SDR": sdr, "ISR": isr, "SIR": sir}
    for metric in ("SDR", "ISR", "SIR"):
        exact, rounded = scores["float"][metric], scores["16 bit"][metric]
        assert (np.isfinite(exact).sum(axis=1) >= 3).all(), (metric, exact)
        swing = np.abs(np.nanmedian(exact, axis=1) - np.nanmedian(rounded, axis=1))
        assert (swing < 3).all(), (metric, swing)
    # and plausible for an oracle mask: the voice well apart from the accompaniment
    assert np.nanmedian(scores["float"]["SIR"][0]) > 10
    assert np.nanmedian(scores["float"]["ISR"][0]) > 8
