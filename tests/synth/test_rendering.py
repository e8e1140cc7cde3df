"""melunmix.synth.rendering: the rendered stems (sung and unsung sections, rooms and reverb)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.signal

from melunmix import synth
from melunmix.base.names import SOURCES

from synth_support import DURATION, PARAMS, SR, read_stem, unpredictable_db


def test_vocals_silent_in_whole_sections_and_sung_in_the_others(dataset, manifest):
    assert manifest["reverb_tail"] == synth.REVERB_TAIL
    nb_tail = round(synth.REVERB_TAIL * SR)
    for entry in manifest["tracks"]:
        vocals = read_stem(dataset / entry["subset"] / entry["name"])["vocals"]
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


def test_reverb_makes_every_stems_channels_linearly_independent(dataset, manifest):
    entry = manifest["tracks"][0]
    song = synth.arrange_song(PARAMS["seed"], entry["split"], 0, DURATION)
    written = read_stem(dataset / entry["subset"] / entry["name"])
    assert entry["reverb"] == {name: {"rt60": r.rt60, "predelay": r.predelay, "wet_db": r.wet_db,
                                      "damping_hz": r.damping_hz} for name, r in song.reverb.items()}
    for name in SOURCES:
        assert unpredictable_db(*written[name].T) > -30, name
    # Without the reverb (generator version 1) this song's voice is one signal panned.
    dry = synth.render_song(dataclasses.replace(song, reverb=None), SR)["vocals"]
    assert unpredictable_db(*dry.T) < -60
