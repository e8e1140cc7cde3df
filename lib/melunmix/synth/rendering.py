"""Rendering: a :class:`~melunmix.synth.arrangement.Song` to four stems and their mixture.

Drums, bass and other are played by `tinysoundfont`, one synthesizer per stem, from the
General MIDI soundfont that ships in ``pretty_midi``; the vocals are sung by
:mod:`melunmix.synth.voice`. Every stem then gets its room (:func:`add_reverb`) and its level,
and the song is scaled below ``PEAK_LIMIT``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal

from . import voice as voice_model
from ..base.names import SOURCES
from .arrangement import Part, Reverb, Song, SongSection

SOUNDFONT_FILE = "TimGM6mb.sf2"
#: Largest mixture peak written; the song is scaled so no stem or mixture exceeds it.
PEAK_LIMIT = 0.99
#: Longest reverb tail (seconds, pre-delay included): a stem is exactly silent from this
#: long after its last non-zero dry sample. Every drawn room fits (0.88 + 0.03 s at most).
REVERB_TAIL = 1.0
# Overlap-add blocks transformed at once by the reverb (bounds its memory on long songs).
_REVERB_BLOCKS_PER_FFT = 4


def soundfont_path() -> Path:
    """Path of ``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pretty_midi is not installed; it ships the soundfont: pip install pretty_midi")
    path = Path(list(spec.submodule_search_locations)[0]) / SOUNDFONT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall pretty_midi, which ships {SOUNDFONT_FILE}")
    return path


def _new_synth(sample_rate: int):
    try:
        import tinysoundfont
    except ImportError as err:  # its wheel is installed without pyaudio, see pyproject.toml
        raise ImportError(
            "tinysoundfont is needed to render the dataset: pip install --no-deps tinysoundfont==0.3.7"
        ) from err
    synth = tinysoundfont.Synth(samplerate=int(sample_rate))
    sfid = synth.sfload(str(soundfont_path()), max_voices=48)
    return synth, sfid


def render_stem(parts: list[Part], nb_samples: int, sample_rate: int) -> np.ndarray:
    """Render the parts of one stem with a fresh synthesizer.

    Parameters
    ----------
    parts : list of Part
        Up to 16 parts, one MIDI channel each (percussion parts use bank 128).
    nb_samples : int
        Length of the output.
    sample_rate : int
        Hz.

    Returns
    -------
    ndarray, float32, shape (nb_samples, 2)
        Stereo signal.
    """
    synth, sfid = _new_synth(sample_rate)
    # (sample, priority, order, action): at one instant note-offs go first, so a repeated
    # key restarts, and sorting on `order` keeps ties in creation order (deterministic).
    events: list[tuple[int, int, int, str, int, int, int]] = []
    for channel, part in enumerate(parts):
        if part.bank == 128:
            channel = 9  # General MIDI percussion channel
            synth.program_select(channel, sfid, 128, part.program, is_drums=True)
        else:
            channel = channel if channel < 9 else channel + 1
            synth.program_select(channel, sfid, part.bank, part.program)
        synth.control_change(channel, 10, part.pan)
        for note in part.notes:
            on = int(round(note.start * sample_rate))
            off = int(round(note.end * sample_rate))
            events.append((on, 2, len(events), "on", channel, note.pitch, note.velocity))
            events.append((off, 0, len(events), "off", channel, note.pitch, 0))
    events.sort()
    out = np.zeros((nb_samples, 2), dtype=np.float32)
    buffer = memoryview(out).cast("B")
    frame_bytes = 2 * 4
    position = 0
    for sample, _, _, action, channel, a, b in events:
        if sample >= nb_samples:
            break
        if sample > position:
            synth.generate_simple(sample - position, buffer=buffer[position * frame_bytes:sample * frame_bytes])
            position = sample
        if action == "on":
            synth.noteon(channel, a, b)
        else:
            synth.noteoff(channel, a)
    if position < nb_samples:
        synth.generate_simple(nb_samples - position, buffer=buffer[position * frame_bytes:])
    return out


def pan_gains(pan: int) -> tuple[float, float]:
    """Left and right gains of a mono source at MIDI pan ``pan`` (0 left, 64 centre, 127
    right): the constant-power sine law."""
    angle = 0.5 * math.pi * min(max(pan, 0), 127) / 127.0
    return math.cos(angle), math.sin(angle)


def render_vocals(parts: list[Part], nb_samples: int, sample_rate: int) -> np.ndarray:
    """Sing the sung parts of the vocals stem (:func:`melunmix.synth.voice.render_voice`), panned.

    Parameters
    ----------
    parts : list of Part
        Parts with a ``singer`` (the lead first); each at its ``gain_db`` and ``pan``.
    nb_samples : int
    sample_rate : int
        Hz.

    Returns
    -------
    ndarray, float64, shape (nb_samples, 2)
    """
    out = np.zeros((nb_samples, 2))
    for part in parts:
        if part.singer is None:
            raise ValueError(f"vocal part {part.name!r} has no singer")
        gains = np.array(pan_gains(part.pan)) * 10.0 ** (part.gain_db / 20.0)
        for start, phrase in voice_model.sing(part.notes, part.syllables, part.singer, nb_samples, sample_rate):
            out[start:start + len(phrase)] += phrase[:, None] * gains
    return out


def _presence_filter(audio: np.ndarray, sample_rate: int, gain_db: float) -> np.ndarray:
    """High-pass at 90 Hz and a peak around 3 kHz (the "singer's formant" of trained voices)."""
    high_pass = scipy.signal.butter(2, 90.0, btype="highpass", fs=sample_rate, output="sos")
    # Peaking biquad (RBJ audio EQ cookbook), Q = 1.
    w0 = 2 * np.pi * min(3000.0, 0.4 * sample_rate) / sample_rate
    amp = 10 ** (gain_db / 40)
    alpha = np.sin(w0) / 2.0
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    peak = np.concatenate([b / a[0], a / a[0]])[None, :]
    sos = np.concatenate([high_pass, peak])
    return scipy.signal.sosfilt(sos, audio, axis=0)


def _active_rms(audio: np.ndarray, sample_rate: int) -> float:
    """RMS over the 50 ms blocks within 40 dB of the loudest one (what is heard when it plays)."""
    block = max(1, int(0.05 * sample_rate))
    nb_blocks = audio.shape[0] // block
    if nb_blocks == 0:
        return float(np.sqrt(np.mean(audio**2)))
    power = np.mean(audio[: nb_blocks * block].reshape(nb_blocks, block, -1) ** 2, axis=(1, 2))
    if power.max() <= 0:
        return 0.0
    return float(np.sqrt(power[power >= power.max() * 1e-4].mean()))


def _vocal_gate(sections: list[SongSection], nb_samples: int, sample_rate: int) -> np.ndarray:
    """1 in sung sections, 0 elsewhere, with a 20 ms fade ending at each sung section's end,
    so the unsung sections are exactly silent."""
    gate = np.zeros(nb_samples)
    fade = int(0.02 * sample_rate)
    for section in sections:
        if not section.sung:
            continue
        start, end = int(round(section.start * sample_rate)), min(nb_samples, int(round(section.end * sample_rate)))
        gate[start:end] = 1.0
        n = min(fade, end - start)
        gate[end - n:end] = np.linspace(1.0, 0.0, n + 1)[1:]
    return gate


def reverb_impulse_response(reverb: Reverb, sample_rate: int) -> np.ndarray:
    """The impulse response of a stem's reverb tail (the dry sound not included).

    Parameters
    ----------
    reverb : Reverb
        The room: reverberation time, pre-delay, wet level, damping, noise seed.
    sample_rate : int
        Hz.

    Returns
    -------
    ndarray, float32, shape (nb_taps, 2)
        Left and right tails from independent noise; zero for the first
        ``round(predelay * sample_rate)`` taps, then decaying by 60 dB over ``rt60`` seconds,
        where it ends: ``nb_taps = round((predelay + rt60) * sample_rate)``, at most
        ``round(REVERB_TAIL * sample_rate)``. The energy of each channel (sum of squares)
        is ``10 ** (wet_db / 10)``.
    """
    nb_predelay = int(round(reverb.predelay * sample_rate))
    nb_taps = min(int(round((reverb.predelay + reverb.rt60) * sample_rate)), int(round(REVERB_TAIL * sample_rate)))
    if not 0 <= nb_predelay < nb_taps:
        raise ValueError(
            f"reverb predelay {reverb.predelay:g} s and rt60 {reverb.rt60:g} s give no tail within "
            f"REVERB_TAIL = {REVERB_TAIL:g} s; use a positive rt60 and predelay + rt60 <= {REVERB_TAIL:g}"
        )
    noise = np.random.default_rng(reverb.seed).standard_normal((nb_taps - nb_predelay, 2))
    # One-pole low-pass, capped below Nyquist so low sample rates still get a stable filter.
    pole = math.exp(-2 * math.pi * min(reverb.damping_hz, 0.45 * sample_rate) / sample_rate)
    tail = scipy.signal.lfilter([1.0 - pole], [1.0, -pole], noise, axis=0)
    t = np.arange(nb_taps - nb_predelay) / sample_rate
    tail *= 10.0 ** (-3.0 * t / reverb.rt60)[:, None]  # amplitude: -60 dB at t = rt60
    tail *= 10.0 ** (reverb.wet_db / 20.0) / np.sqrt(np.sum(tail**2, axis=0))
    out = np.zeros((nb_taps, 2), dtype=np.float32)
    out[nb_predelay:] = tail
    return out


def _add_convolved_send(audio: np.ndarray, send: np.ndarray, response: np.ndarray) -> None:
    """Add to ``audio`` (nb_samples, 2), in place, the first ``nb_samples`` samples of
    ``send`` (nb_samples,) convolved with each column of ``response`` (nb_taps, 2): float32
    overlap-add, the send's FFT shared by both channels. Blocks are transformed a few at a
    time: small work arrays are reused by the allocator, where fresh large ones cost more in
    page faults than the FFTs themselves."""
    nb_samples, nb_taps = send.shape[0], response.shape[0]
    nfft = 1 << (4 * nb_taps - 1).bit_length()  # a power of two >= 4 nb_taps
    step = nfft - nb_taps + 1
    spectrum = scipy.fft.rfft(response, nfft, axis=0)  # (nfft // 2 + 1, 2), complex64
    chunk = step * _REVERB_BLOCKS_PER_FFT
    for start in range(0, nb_samples, chunk):
        part = send[start:start + chunk]
        nb_blocks = -(-part.shape[0] // step)
        padded = np.zeros(nb_blocks * step, dtype=np.float32)
        padded[:part.shape[0]] = part
        blocks = scipy.fft.rfft(padded.reshape(nb_blocks, step), nfft, axis=1)[:, :, None] * spectrum
        blocks = scipy.fft.irfft(blocks, nfft, axis=1)  # (nb_blocks, nfft, 2)
        for k in range(nb_blocks):
            at = start + k * step
            end = min(at + nfft, nb_samples)
            if at < end:
                audio[at:end] += blocks[k, :end - at]


def add_reverb(audio: np.ndarray, reverb: Reverb, sample_rate: int) -> np.ndarray:
    """Add to ``audio`` (nb_samples, 2) float32, in place, its reverb tail.

    As in most studio reverbs (Freeverb among them), the room is fed the mean of the two
    channels and returns a left and a right tail (independent noise, see
    :func:`reverb_impulse_response`), so one FFT of the send serves both channels.
    """
    response = reverb_impulse_response(reverb, sample_rate)
    nb_taps = response.shape[0]
    sounding = np.flatnonzero((audio[:, 0] != 0) | (audio[:, 1] != 0))
    if sounding.size == 0:
        return audio
    # Where none of the last nb_taps dry samples sounds the exact result is zero, but FFT
    # convolution leaves round-off (~1e-7 of the peak) there: those samples are set back to
    # zero, so silence stays exact zeros (museval skips all-zero windows) and a stem is
    # exactly silent from nb_taps samples after its last non-zero sample.
    gaps = np.flatnonzero(np.diff(sounding) > nb_taps)
    silent = [(0, sounding[0])] + [(sounding[i] + nb_taps, sounding[i + 1]) for i in gaps]
    silent.append((sounding[-1] + nb_taps, audio.shape[0]))
    send = audio[:, 0] + audio[:, 1]
    send *= np.float32(0.5)
    _add_convolved_send(audio, send, response)
    for start, end in silent:
        audio[start:end] = 0.0
    return audio


def render_song(song: Song, sample_rate: int) -> dict[str, np.ndarray]:
    """Render the four stems and their mixture.

    Each stem gets its reverb (``song.reverb``; none when it is ``None``) and is scaled to
    its level, then the song as a whole so that neither the mixture nor any stem peaks
    above ``PEAK_LIMIT``; the mixture is the float32 sum ``((vocals + drums) + bass) + other``
    of the float32 stems. The vocals are exact zeros outside the sung sections except for
    their reverb tail, at most ``REVERB_TAIL`` seconds after a sung section's end.

    Returns
    -------
    dict
        ``"mixture"`` and every name of ``SOURCES`` -> float32 array of shape
        ``(nb_samples, 2)``, ``nb_samples = round(song.duration * sample_rate)``.
    """
    nb_samples = int(round(song.duration * sample_rate))
    fade_out = np.linspace(1.0, 0.0, min(nb_samples, int(0.03 * sample_rate)), dtype=np.float32)
    out = {}
    for name in SOURCES:
        if name == "vocals":
            audio = render_vocals(song.parts[name], nb_samples, sample_rate)
            audio = _presence_filter(audio, sample_rate, song.voice_presence_db)
            audio *= _vocal_gate(song.sections, nb_samples, sample_rate)[:, None]
            audio = audio.astype(np.float32)
        else:
            audio = render_stem(song.parts[name], nb_samples, sample_rate)
        if song.reverb is not None:
            add_reverb(audio, song.reverb[name], sample_rate)
        audio[nb_samples - len(fade_out):] *= fade_out[:, None]
        rms = _active_rms(audio, sample_rate)
        if rms > 0:
            audio *= np.float32(10 ** (song.stem_levels_db[name] / 20) / rms)
        out[name] = audio

    def mix() -> np.ndarray:
        mixture = out["vocals"] + out["drums"]
        mixture += out["bass"]
        mixture += out["other"]
        return mixture

    peak_mix = _peak(mix())
    peak_stems = max(_peak(out[name]) for name in SOURCES)
    scale = np.float32(min(song.mixture_peak / max(peak_mix, 1e-12), PEAK_LIMIT * 0.98 / max(peak_stems, 1e-12)))
    for name in SOURCES:
        out[name] *= scale
    out["mixture"] = mix()
    if _peak(out["mixture"]) > PEAK_LIMIT:  # rounding cannot get here; a guard, not a path
        raise RuntimeError(f"{song.name}: mixture peak {_peak(out['mixture']):.4f} above {PEAK_LIMIT}")
    return out


def _peak(audio: np.ndarray) -> float:
    """Largest absolute sample (without the temporary array of ``np.abs``)."""
    return max(float(audio.max()), -float(audio.min()))


@functools.lru_cache(maxsize=1)
def _preset_names() -> dict[tuple[int, int], str]:
    """(bank, program) -> preset name, as the soundfont spells it."""
    synth, sfid = _new_synth(44100)
    names = {(bank, program): synth.sfpreset_name(sfid, bank, program) for bank in (0, 128) for program in range(128)}
    return {key: name for key, name in names.items() if name}


def name_parts(song: Song) -> None:
    """Fill every part's ``name`` with its preset's name, or a sung part's with its singer
    (for the manifest and the data card)."""
    for stem_parts in song.parts.values():
        for part in stem_parts:
            if part.singer is not None:
                role = f"backing voice, {part.harmony}" if part.harmony else "lead voice"
                part.name = f"{role} ({part.singer.voice_type})"
            else:
                part.name = _preset_names().get((part.bank, part.program), f"bank {part.bank} program {part.program}")
