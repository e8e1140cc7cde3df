"""The singing voice (melunmix.synth.voice): formants, pitch, vibrato, consonants, harmony, bytes.

Checked against independent estimators: LPC (librosa.lpc) for the formants, YIN
(librosa.yin) for the pitch, scipy's analog filter response for the resonances.
"""

from __future__ import annotations

import dataclasses
import hashlib

import librosa
import numpy as np
import pytest
import scipy.signal

from melunmix import synth
from melunmix.synth import voice

SR = 44100


def _singer(voice_type="tenor", **changes) -> voice.Singer:
    base = voice.draw_singer(np.random.default_rng(1), [48], voice_type=voice_type, transpose=0)
    return dataclasses.replace(base, **{"formant_scale": 1.0, "vowel_space": 1.0, **changes})


def _note(start, end, pitch, velocity=100):
    return synth.Note(start=start, end=end, pitch=pitch, velocity=velocity)


def _lpc_formants(x: np.ndarray, order: int = 12, rate: int = 11025) -> np.ndarray:
    """Formant frequencies (Hz) of ``x`` at SR from the roots of an LPC polynomial (order
    ``order`` at ``rate`` Hz, pre-emphasised): the peaks of its all-pole envelope."""
    y = librosa.resample(x, orig_sr=SR, target_sr=rate)
    y = scipy.signal.lfilter([1.0, -0.63], [1.0], y) * np.hanning(len(y))
    roots = [r for r in np.roots(librosa.lpc(y, order=order)) if np.imag(r) > 0]
    freqs = np.angle(roots) * rate / (2 * np.pi)
    bandwidths = -np.log(np.abs(roots)) * rate / np.pi
    return np.sort(freqs[(freqs > 90) & (bandwidths < 500)])


@pytest.mark.parametrize("voice_type, pitch", [("bass", 43), ("tenor", 48), ("alto", 55)])
@pytest.mark.parametrize("vowel", ["e", "i"])
def test_sustained_vowel_has_its_formants_at_the_table_frequencies(voice_type, pitch, vowel):
    singer = _singer(voice_type, breathiness=0.3)
    audio = voice.render_voice([_note(0.1, 2.1, pitch)], [voice.Syllable("", vowel)], singer, int(2.3 * SR), SR)
    found = _lpc_formants(audio[int(0.6 * SR):int(2.0 * SR)])
    table, levels, _ = voice.vowel_formants(voice_type, vowel)
    # F1-F3 where the table gives them within 25 dB of F1 (a weaker one, as the bass's F2
    # of "i" at -30 dB, hides in the skirts of its neighbours)
    checked = [f for f, level in zip(table[:3], levels[:3]) if level >= -25]
    assert len(checked) >= 2
    for expected in checked:
        nearest = found[np.argmin(np.abs(found - expected))]
        assert abs(nearest - expected) < 0.1 * expected + 20, (voice_type, vowel, table[:3], found)


def test_singer_moves_the_formants_by_its_tract_and_vowel_space():
    table = voice.vowel_formants("tenor", "i")[0]
    longer = voice.singer_formants(_singer(formant_scale=0.95), "i")[0]
    np.testing.assert_allclose(longer, 0.95 * table)
    wider = voice.singer_formants(_singer(vowel_space=1.1), "i")[0]
    centre = np.exp(np.mean([np.log(voice.vowel_formants("tenor", v)[0]) for v in voice.VOWELS], axis=0))
    np.testing.assert_allclose(np.log(wider / centre), 1.1 * np.log(table / centre))
    # the baritone lies between bass and tenor, formant by formant
    bass, tenor = voice.vowel_formants("bass", "a")[0], voice.vowel_formants("tenor", "a")[0]
    np.testing.assert_allclose(voice.vowel_formants("baritone", "a")[0], np.sqrt(bass * tenor))


def test_formants_move_from_vowel_to_vowel():
    singer = _singer("tenor", breathiness=0.3)
    notes = [_note(0.1, 1.1, 48), _note(1.1, 2.1, 48)]
    audio = voice.render_voice(notes, [voice.Syllable("", "o"), voice.Syllable("j", "i")], singer, int(2.3 * SR), SR)
    second_o = _lpc_formants(audio[int(0.5 * SR):int(1.05 * SR)])
    second_i = _lpc_formants(audio[int(1.4 * SR):int(2.05 * SR)])
    f2 = lambda found, near: found[np.argmin(np.abs(found - near))]  # noqa: E731
    assert f2(second_i, 1870) > 1700 and f2(second_o, 800) < 950


def test_resonance_is_a_second_order_filter_normalised_to_its_peak():
    freqs = np.fft.rfftfreq(2048, 1 / SR)
    formants = np.array([[700.0, 3000.0, 4000.0, 5000.0, 6000.0, 0.0, -200.0, -200.0, -200.0, -200.0,
                          90.0, 100.0, 100.0, 100.0, 100.0]])
    envelope = voice.tract_envelope(freqs, formants)[0]
    # |H| of the analog resonator w0^2 / (s^2 + 2 pi B s + w0^2), times B / F (its peak is F / B)
    w0, bw = 2 * np.pi * 700.0, 2 * np.pi * 90.0
    _, response = scipy.signal.freqs([w0**2], [1.0, bw, w0**2], worN=2 * np.pi * freqs)
    reference = np.abs(response) * 90.0 / 700.0
    low = freqs <= 12000.0  # below twice the highest formant: the exact sum
    np.testing.assert_allclose(envelope[low], reference[low], rtol=2e-4, atol=1e-7)
    # above it the 1/f^2 continuation stays within 2.5 dB
    high = freqs > 12000.0
    assert np.all(np.abs(20 * np.log10(envelope[high] / reference[high])) < 2.5)
    assert voice.tract_envelope(np.array([0.0, 700.0, 1e4]), formants)[0, 1] == pytest.approx(1.0, abs=1e-4)


def test_note_is_sung_at_its_pitch_with_the_singers_vibrato():
    vibrato = voice.Vibrato(depth_cents=40.0, rate_hz=5.5, delay=0.15, scoop_cents=50.0, scoop_time=0.04)
    singer = _singer("tenor", vibrato=vibrato, jitter_cents=2.0, drift_cents=3.0, transpose=-12)
    note = _note(0.1, 2.6, 69)  # written A4, sung an octave down: 220 Hz
    audio = voice.render_voice([note], [voice.Syllable("", "a")], singer, int(2.8 * SR), SR)
    hop = 256
    f0 = librosa.yin(audio, fmin=100, fmax=500, sr=SR, frame_length=2048, hop_length=hop, center=False)
    times = (np.arange(len(f0)) * hop + 1024) / SR
    cents = 100 * (librosa.hz_to_midi(f0) - (note.pitch - 12))
    steady = (times > note.start + vibrato.delay + 0.3) & (times < note.end - 0.05)
    t = times[steady]
    # the vibrato's rate: the peak of the periodogram of the pitch track (0.05 Hz grid)
    rates = np.arange(3.0, 9.0, 0.05)
    centred = cents[steady] - cents[steady].mean()
    power = [abs(np.sum(centred * np.exp(-2j * np.pi * r * t))) for r in rates]
    assert rates[int(np.argmax(power))] == pytest.approx(vibrato.rate_hz, abs=0.3)
    # its depth: the amplitude of the least-squares sinusoid at that rate
    basis = np.stack([np.sin(2 * np.pi * vibrato.rate_hz * t), np.cos(2 * np.pi * vibrato.rate_hz * t),
                      np.ones_like(t)], axis=1)
    coef = np.linalg.lstsq(basis, cents[steady], rcond=None)[0]
    assert np.hypot(coef[0], coef[1]) == pytest.approx(vibrato.depth_cents, rel=0.2)
    assert abs(coef[2]) < 15  # centred on the note
    # the phrase scoops up into its first note
    onset = (times > note.start + 0.01) & (times < note.start + 0.04)
    assert np.median(cents[onset]) < -15


def test_portamento_glides_between_two_notes():
    singer = _singer("tenor", glide_time=0.1, jitter_cents=1.0, drift_cents=1.0,
                     vibrato=voice.Vibrato(0.0, 5.0, 0.2, 0.0, 0.03))
    notes = [_note(0.1, 0.8, 50), _note(0.8, 1.5, 55)]
    audio = voice.render_voice(notes, [voice.Syllable("", "a"), voice.Syllable("", "a", tied=True)], singer,
                               int(1.7 * SR), SR)
    hop = 128
    f0 = librosa.yin(audio, fmin=100, fmax=300, sr=SR, frame_length=2048, hop_length=hop, center=False)
    times = (np.arange(len(f0)) * hop + 1024) / SR
    midi = librosa.hz_to_midi(f0)
    assert np.median(midi[(times > 0.4) & (times < 0.7)]) == pytest.approx(50, abs=0.1)
    assert np.median(midi[(times > 1.1) & (times < 1.4)]) == pytest.approx(55, abs=0.1)
    # half way through the glide, half way between the notes
    assert np.interp(0.85, times, midi) == pytest.approx(52.5, abs=1.0)


@pytest.mark.parametrize("consonant", ["s", "sh", "t", "f", "z"])
def test_consonant_onsets_carry_more_high_frequency_noise_than_vowel_centres(consonant):
    singer = _singer("baritone", breathiness=0.2)
    notes = [_note(0.1 + 0.5 * i, 0.6 + 0.5 * i, 50 + i) for i in range(4)]
    syllables = [voice.Syllable("", "a")] + [voice.Syllable(consonant, v) for v in ("a", "o", "e")]
    audio = voice.render_voice(notes, syllables, singer, int(2.3 * SR), SR)
    high = scipy.signal.sosfilt(scipy.signal.butter(4, 4000, "highpass", fs=SR, output="sos"), audio)
    for note in notes[1:]:
        c_len = voice.CONSONANTS[consonant].duration
        onset = high[int(note.start * SR):int((note.start + min(c_len, 0.35 * 0.5)) * SR)]
        centre = high[int((note.start + 0.25) * SR):int((note.start + 0.4) * SR)]
        ratio_db = 10 * np.log10(np.sum(onset**2) / len(onset) / (np.sum(centre**2) / len(centre)))
        assert ratio_db > 6, (consonant, note, ratio_db)


def test_breath_in_a_rest_before_a_phrase_and_silence_elsewhere():
    singer = _singer("alto", breath_db=-24.0)
    notes = [_note(0.5, 1.0, 60), _note(2.0, 2.5, 62)]
    syllables = [voice.Syllable("m", "a"), voice.Syllable("l", "i")]
    audio = voice.render_voice(notes, syllables, singer, 3 * SR, SR)
    # a rest of 1 s: a breath before the second phrase, exact zeros before it starts
    breath = audio[int(1.75 * SR):int(1.95 * SR)]
    release = voice._RELEASE
    assert not audio[int((1.0 + release) * SR) + 1:int((2.0 - voice._BREATH[1] - 0.011) * SR)].any()
    assert np.sqrt(np.mean(breath**2)) > 1e-3
    # noise, not a pitched sound: no strong autocorrelation peak in the pitch range
    seg = breath - breath.mean()
    corr = np.correlate(seg[:4096], seg[:4096], "full")[4095:]
    assert corr[int(SR / 1000):int(SR / 80)].max() < 0.5 * corr[0]
    # before the first phrase's breath and after the last release: exact zeros
    assert not audio[:int((0.5 - voice._BREATH[1] - 0.011) * SR)].any()
    assert not audio[int((2.5 + release) * SR) + 1:].any()


def test_same_arguments_same_bytes_and_the_seed_matters():
    notes = [_note(0.2, 0.7, 60), _note(0.7, 1.3, 64), _note(1.9, 2.5, 62)]
    syllables = voice.draw_syllables(np.random.default_rng(5), 3, [False, True, True])
    singer = _singer("soprano")
    first = voice.render_voice(notes, syllables, singer, 3 * SR, SR)
    again = voice.render_voice(notes, syllables, singer, 3 * SR, SR)
    assert hashlib.sha256(first.tobytes()).digest() == hashlib.sha256(again.tobytes()).digest()
    other = voice.render_voice(notes, syllables, dataclasses.replace(singer, seed=singer.seed + 1), 3 * SR, SR)
    assert not np.array_equal(first, other)


def _song_with_backing():
    for index in range(40):
        song = synth.arrange_song(0, "train", index, 20.0)
        if len(song.parts["vocals"]) > 1:
            return song
    raise AssertionError("no song with backing vocals among 40")


def test_backing_voice_sings_a_third_or_fifth_from_the_lead_on_its_syllables_in_choruses():
    song = _song_with_backing()
    lead, backing = song.parts["vocals"]
    choruses = [s for s in song.sections if s.sung and s.name == "chorus"]
    assert backing.notes and all(any(c.start <= n.start < c.end for c in choruses) for n in backing.notes)
    assert backing.singer.transpose == lead.singer.transpose and backing.gain_db < 0
    by_start = {n.start: (n, syl) for n, syl in zip(lead.notes, lead.syllables)}
    intervals = {"a third above": {3, 4}, "a third below": {-3, -4}, "a fifth below": {-6, -7}}[backing.harmony]
    for note, syllable in zip(backing.notes, backing.syllables):
        lead_note, lead_syllable = by_start[note.start]
        assert note.pitch - lead_note.pitch in intervals and syllable == lead_syllable
    # rendered apart, the two voices' pitches stand in the interval's ratio
    nb = int(round(song.duration * SR))
    quiet = {"jitter_cents": 1.0, "drift_cents": 1.0}
    rendered = [voice.render_voice(p.notes, p.syllables, dataclasses.replace(p.singer, **quiet), nb, SR)
                for p in (lead, backing)]
    note = max(backing.notes, key=lambda n: n.end - n.start)
    lead_note = by_start[note.start][0]
    segment = slice(int((note.start + 0.12) * SR), int((note.end - 0.03) * SR))
    f0 = [np.median(librosa.yin(r[segment], fmin=70, fmax=1100, sr=SR, frame_length=4096)) for r in rendered]
    assert f0[1] / f0[0] == pytest.approx(2 ** ((note.pitch - lead_note.pitch) / 12), rel=0.015)


def test_lyrics_repeat_in_a_repeated_chorus():
    for index in range(40):
        song = synth.arrange_song(1, "test", index, 45.0)
        lead = song.parts["vocals"][0]
        per_section = []
        for section in song.sections:
            words = [s.text for n, s in zip(lead.notes, lead.syllables) if section.start <= n.start < section.end]
            per_section.append((section.name, words))
        choruses = [w for name, w in per_section if name == "chorus" and w]
        verses = [w for name, w in per_section if name == "verse" and w]
        if len(choruses) >= 2 and len(verses) >= 2 and len(choruses[0]) == len(choruses[1]):
            assert choruses[0] == choruses[1]
            if len(verses[0]) == len(verses[1]):
                assert verses[0] != verses[1]  # verses get new words
            return
    raise AssertionError("no song with two choruses and two verses among 40")


def test_singers_cover_the_voice_types_and_sing_in_their_range():
    songs = [synth.arrange_song(2, "train", i, 20.0) for i in range(60)]
    types = {s.parts["vocals"][0].singer.voice_type for s in songs}
    assert types == set(voice.VOICE_TYPES)
    for song in songs:
        lead = song.parts["vocals"][0]
        low, high = voice.VOICE_RANGES[lead.singer.voice_type]
        median = np.median([n.pitch for n in lead.notes]) + lead.singer.transpose
        assert low - 6 <= median <= high + 6, (lead.singer.voice_type, median)


def test_bad_input_is_refused_with_a_message():
    singer = _singer()
    with pytest.raises(ValueError, match="one syllable per note: 1 notes, 0 syllables"):
        voice.render_voice([_note(0.1, 0.5, 60)], [], singer, SR, SR)
    with pytest.raises(ValueError, match="voice type must be one of bass, baritone"):
        voice.vowel_formants("mezzo", "a")
    with pytest.raises(ValueError, match="vowel must be one of a, e, i, o, u"):
        voice.vowel_formants("tenor", "y")


def test_vocal_spectrogram_shows_the_loudest_stretch():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from melunmix.analysis import audio_figures

    rate = 16000
    audio = np.zeros((2, 10 * rate), dtype=np.float32)
    audio[:, 6 * rate:7 * rate] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)
    start = audio_figures.loudest_window(audio, rate, seconds=2.0)
    assert 5 * rate <= start <= 6 * rate and (start + 2 * rate) >= 7 * rate
    assert audio_figures.loudest_window(audio[:, :rate], rate, seconds=2.0) == 0
    fig = audio_figures.vocal_spectrogram(audio, rate, "test", start=start, seconds=2.0)
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((start / rate, start / rate + 2.0))
    assert ax.get_ylim()[1] == pytest.approx(8.0)
    image = ax.images[0].get_array()
    row = int(round(440 / 8000 * (image.shape[0] - 1)))
    assert np.argmax(image.mean(axis=1)) in (row - 1, row, row + 1)  # the tone's line is the brightest
    plt.close(fig)
    with pytest.raises(ValueError, match="start must be a sample inside the audio"):
        audio_figures.vocal_spectrogram(audio, rate, "test", start=10 * rate)
