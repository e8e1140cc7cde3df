"""The built-in MUSDB18-format dataset: generated songs, a synthesised singer over a General MIDI band.

Every song is arranged at random (tempo, key, chord progression, song form, instruments,
panning, levels). Drums, bass and other are rendered stem by stem with
`tinysoundfont <https://github.com/nwhitehead/tinysoundfont-pybind>`_ from the
``TimGM6mb.sf2`` soundfont that ships inside ``pretty_midi`` -- the approach of Slakh2100
(Manilow et al., "Cutting Music Source Separation Some Slakh", WASPAA 2019). The vocals
are sung by a source-filter singing voice (:mod:`melunmix.voice`): syllables with moving
formants, consonants and breaths, by a singer drawn per song, with a harmony line in the
choruses of some songs. The result has the MUSDB18-HQ layout::

    out/train/<Artist - Title>/{mixture,vocals,drums,bass,other}.wav
    out/test/<Artist - Title>/...
    out/setup.yaml      musdb setup file; its ``validation_tracks`` name the valid split
    out/README.md       data card
    out/dataset.json    manifest, written last: its presence marks a complete dataset

so ``musdb.DB(out, is_wav=True, setup_file="setup.yaml")`` reads it like MUSDB18-HQ. The
validation tracks live in ``train/`` as in MUSDB18.

Every stem passes through its own small stereo room (:func:`reverb_impulse_response`):
fed the mean of the stem's two channels, it returns a decaying noise tail drawn
independently for the left and the right channel. Without it
each stem would be a mono signal panned, its two channels linearly dependent, and BSS
Eval v4 (museval) could not split an estimate's error into interference and spatial
distortion stably: SIR and ISR then moved by up to 20 dB when the references were merely
rounded to 16 bit. The tail lasts at most ``REVERB_TAIL`` seconds, so the vocals are
exact zeros in the unsung sections except within ``REVERB_TAIL`` of a sung section's end.

Songs are byte-for-byte reproducible: each one draws from its own random generator seeded
by ``(seed, split, index)``, so a song does not depend on how many others are made.

This module knows nothing of where datasets live (see :mod:`melunmix.datasets`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.io.wavfile
import scipy.signal
import yaml

from . import voice as voice_model
from .datasets.roots import GENERATED_FORMAT
from .files import sha256_file, write_text
from .provenance import package_versions
from .voice import Singer, Syllable, Vibrato

#: Stems of a track, in the order the mixture sums them: ``((vocals + drums) + bass) + other``.
SOURCE_NAMES = ("vocals", "drums", "bass", "other")
#: Every file of a track folder.
TRACK_FILES = ("mixture.wav",) + tuple(f"{name}.wav" for name in SOURCE_NAMES)
#: Bumped whenever a change alters the audio written for the same arguments; a dataset made
#: by another version is refused (see :func:`make_dataset`). 2: per-stem stereo reverb.
#: 3: the vocals sung by :mod:`melunmix.voice` instead of a General MIDI voice preset.
#: 4: each room fed the mean of a stem's two channels (one FFT for both tails: the CPU limit).
GENERATOR_VERSION = 4
# Mixed into every song's seed. Not GENERATOR_VERSION: a change of rendering (as the reverb
# of version 2) keeps the same songs, so results of two versions compare song by song.
_ARRANGEMENT_SEED_VERSION = 1
#: Shortest song (seconds): enough for an intro, a sung section and one more.
MIN_DURATION = 4.0
#: Longest song (seconds); stems are held in memory while rendering.
MAX_DURATION = 600.0
SOUNDFONT_FILE = "TimGM6mb.sf2"
#: Libraries whose versions the dataset card records (the generator's output depends on them).
SOFTWARE_PACKAGES = ("tinysoundfont", "pretty_midi", "numpy", "scipy")
#: Split name -> number mixed into the per-song seed (never reorder: it changes every song).
_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
_MARKER = "dataset.json"
# The parameters, written before the first track and kept: a run whose dataset.json is
# missing (killed, or the file deleted) resumes only with the same parameters.
_PARAMETERS = ".make_dataset.json"
_PARTIAL_DIR = ".partial"
#: Largest mixture peak written; the song is scaled so no stem or mixture exceeds it.
PEAK_LIMIT = 0.99
#: Longest reverb tail (seconds, pre-delay included): a stem is exactly silent from this
#: long after its last non-zero dry sample. Every drawn room fits (0.88 + 0.03 s at most).
REVERB_TAIL = 1.0
# Overlap-add blocks transformed at once by the reverb (bounds its memory on long songs).
_REVERB_BLOCKS_PER_FFT = 4
# The room of a song: reverberation time (s), high-frequency damping (Hz); per stem: the
# reverberation time's spread around the room's, pre-delay (s) and wet level (dB re dry).
_RT60_RANGE = (0.3, 0.8)
_RT60_SPREAD = (0.9, 1.1)
_DAMPING_RANGE_HZ = (4000.0, 10000.0)
_PREDELAY_RANGE = (0.005, 0.03)
_WET_RANGE_DB = (-18.0, -8.0)

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Chord progressions as 0-based scale degrees of diatonic triads (I-V-vi-IV is (0, 4, 5, 3)).
_PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3), (1, 4, 0, 0), (0, 3, 0, 4),
              (3, 4, 2, 5), (0, 2, 3, 4), (3, 0, 4, 5)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 5, 4), (5, 6, 0, 0), (0, 2, 6, 3)),
}
# Song forms after the intro; cycled when a long song needs more sections.
_FORMS = (
    ("verse", "chorus", "verse", "chorus", "break", "chorus", "chorus"),
    ("verse", "verse", "chorus", "break", "verse", "chorus", "chorus"),
    ("verse", "chorus", "break", "verse", "chorus", "bridge", "chorus"),
    ("chorus", "verse", "chorus", "verse", "break", "chorus", "bridge"),
)
_SUNG_SECTIONS = ("verse", "chorus", "bridge")

# General MIDI programs (0-based) of TimGM6mb.sf2 per role. The voice presets are no longer
# rendered (generator version 3 sings the vocals) but one is still drawn, so every later draw
# of an arrangement -- and so every song's notes -- stays what versions 1 and 2 drew.
_VOICE_PROGRAMS = (52, 53, 54, 85)  # Choir Aahs, Voice Oohs, Synth Vox, Solo Vox
# Backing vocals: how often a song has them, and the harmony intervals (scale steps from the
# lead: a third above or below, a fifth below) with their names.
_BACKING_PROBABILITY = 0.4
_HARMONIES = {2: "a third above", -2: "a third below", -4: "a fifth below"}
_BACKING_GAIN_DB = (-10.0, -5.0)
_BASS_PROGRAMS = (32, 33, 34, 35, 36, 38, 39)
_DRUM_KITS = (0, 8, 16, 24, 25, 32)  # bank 128: Standard, Room, Power, Electronic, TR 808, Jazz
_HARMONY_PROGRAMS = {
    "pad": (48, 49, 50, 89, 94, 95, 16, 17, 61),
    "block": (0, 1, 2, 4, 5, 7, 16, 18),
    "arp": (0, 4, 5, 6, 11, 12, 24, 25, 46, 108),
    "strum": (24, 25, 26, 27, 29, 30),
}
_LEAD_PROGRAMS = (22, 29, 30, 40, 56, 65, 66, 71, 73, 80, 81)
# Comping rhythms for block or strummed chords: (onset, length) in beats of a 4-beat chord.
_COMP_PATTERNS = (
    ((0.0, 1.4), (1.5, 0.9), (2.5, 1.4)),
    ((0.0, 1.9), (2.0, 1.9)),
    ((0.0, 0.9), (1.0, 0.9), (2.0, 0.9), (3.0, 0.9)),
    ((0.0, 0.4), (0.5, 1.4), (2.0, 0.4), (2.5, 1.4)),
)

# GM percussion keys.
_KICK, _SNARE, _CLAP, _HAT, _PEDAL_HAT, _OPEN_HAT, _CRASH, _RIDE = 36, 38, 39, 42, 44, 46, 49, 51
_TOMS = (50, 48, 47, 45, 43, 41)
# Drum grooves on a 16-step bar: instrument -> steps.
_GROOVES = {
    "rock": {_KICK: (0, 8, 10), _SNARE: (4, 12), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "four": {_KICK: (0, 4, 8, 12), _CLAP: (4, 12), _OPEN_HAT: (2, 6, 10, 14), _PEDAL_HAT: (0, 4, 8, 12)},
    "half": {_KICK: (0, 7, 10), _SNARE: (8,), _HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
    "funk": {_KICK: (0, 3, 8, 10), _SNARE: (4, 12), _HAT: tuple(range(16))},
    "ride": {_KICK: (0, 6, 8), _SNARE: (4, 12), _RIDE: (0, 2, 4, 6, 8, 10, 12, 14)},
}

_TITLE_WORDS = (
    ("Amber", "Silver", "Quiet", "Electric", "Paper", "Golden", "Hollow", "Velvet", "Distant", "Crimson",
     "Winter", "Neon", "Faded", "Northern", "Restless", "Gentle", "Broken", "Midnight", "Wild", "Open"),
    ("Harbour", "Lanterns", "Rivers", "Signals", "Gardens", "Mirrors", "Engines", "Horizons", "Letters",
     "Streets", "Satellites", "Echoes", "Islands", "Windows", "Stations", "Machines", "Shadows", "Fields",
     "Bridges", "Summers"),
)


# ----------------------------------------------------------------------------------------
# Arrangement: a song as notes in seconds, drawn from one random generator
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One note of a part; times in seconds from the start of the song."""

    start: float
    end: float
    pitch: int  # MIDI key
    velocity: int  # 1..127


@dataclass
class Part:
    """Notes played by one General MIDI preset on one channel of a stem's synthesizer, or
    sung by a singer (``singer`` set: :func:`melunmix.voice.render_voice`, one syllable per note)."""

    name: str  # preset name from the soundfont, e.g. "Acoustic Bass", or the singer's description
    bank: int
    program: int
    pan: int  # MIDI CC 10: 0 left, 64 centre, 127 right
    notes: list[Note] = field(default_factory=list)
    legato: bool = False  # one voice: each note ends at the latest where the next one starts
    singer: Singer | None = None
    syllables: list[Syllable] = field(default_factory=list)
    gain_db: float = 0.0  # level of a sung part re the lead
    harmony: str = ""  # a backing part's interval to the lead, e.g. "a third above"


@dataclass(frozen=True)
class SongSection:
    """A section of the song form, in seconds; ``sung`` when the lead voice sings in it."""

    name: str
    start: float
    end: float
    sung: bool


@dataclass(frozen=True)
class Reverb:
    """A stem's room: the impulse response of its tail (:func:`reverb_impulse_response`).

    The tail is Gaussian noise, low-passed at ``damping_hz`` (high frequencies die sooner,
    as in air) and shaped by an exponential decay of 60 dB over ``rt60`` seconds, where it
    ends; it starts ``predelay`` seconds after the dry sound. Each channel's tail holds the
    energy ``wet_db`` relative to the dry sound (a unit impulse). Left and right draw
    independent noise from ``seed``, so the two channels of a panned mono source are no
    longer linearly dependent.
    """

    rt60: float  # seconds
    predelay: float  # seconds
    wet_db: float  # dB relative to the dry sound
    damping_hz: float  # Hz
    seed: int


@dataclass
class Song:
    """Everything random about one song; rendering it involves no further randomness."""

    name: str
    bpm: float
    key: int  # pitch class of the tonic, 0 = C
    mode: str  # "major" | "minor"
    duration: float  # seconds
    sections: list[SongSection]
    parts: dict[str, list[Part]]  # stem name -> parts; parts["vocals"][0] is the lead singer
    stem_levels_db: dict[str, float]  # loudness of each stem's active passages, dBFS RMS
    mixture_peak: float  # peak of the mixture after scaling (<= PEAK_LIMIT)
    voice_presence_db: float  # "singer's formant" boost around 3 kHz on the vocals
    # Stem name -> its room; None renders every stem dry (as generator version 1 did).
    reverb: dict[str, Reverb] | None = None


def _song_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([_ARRANGEMENT_SEED_VERSION, seed, _SPLIT_CODES[split], index])
    )


def song_name(split: str, index: int, rng: np.random.Generator) -> str:
    """Track name ``"Synth <Split> NNN - <Title>"`` (an "Artist - Title" name as in MUSDB18)."""
    first, second = _TITLE_WORDS
    title = f"{first[rng.integers(len(first))]} {second[rng.integers(len(second))]}"
    return f"Synth {split.capitalize()} {index + 1:03d} - {title}"


def arrange_song(seed: int, split: str, index: int, duration: float) -> Song:
    """Draw the arrangement of one song.

    Parameters
    ----------
    seed : int
        Dataset seed.
    split : {"train", "valid", "test"}
        Split of the song; with ``index`` it picks the song's own random generator.
    index : int
        Position of the song in its split, from 0.
    duration : float
        Length of the song in seconds (>= ``MIN_DURATION``).

    Returns
    -------
    Song
        Sections, parts with their notes (seconds), levels; deterministic in the arguments.
    """
    rng = _song_rng(seed, split, index)
    name = song_name(split, index, rng)
    bpm = float(rng.integers(84, 141))
    beat = 60.0 / bpm
    key = int(rng.integers(12))
    mode = "major" if rng.random() < 0.6 else "minor"
    scale = tuple((key + step) % 12 for step in _SCALES[mode])
    voice = int(rng.choice(_VOICE_PROGRAMS))

    sections_beats = _song_form(rng, duration / beat)
    chords = _chord_timeline(rng, mode, sections_beats)

    parts: dict[str, list[Part]] = {}
    sung_sections, vocal_part = _vocal_part(rng, sections_beats, chords, scale, key, voice)
    parts["vocals"] = [vocal_part]
    parts["drums"] = [_drum_part(rng, sections_beats)]
    parts["bass"] = [_bass_part(rng, sections_beats, chords, scale)]
    parts["other"] = _other_parts(rng, sections_beats, chords, scale, key)

    # Beats -> seconds, with the timing spread of a played performance.
    for stem, stem_parts in parts.items():
        jitter = 0.004 if stem == "drums" else 0.008
        for part in stem_parts:
            part.notes = _to_seconds(rng, part.notes, beat, jitter, duration, legato=part.legato)
    sections = [
        SongSection(label, round(start * beat, 6), round(min(duration, (start + length) * beat), 6), i in sung_sections)
        for i, (label, start, length) in enumerate(sections_beats)
    ]
    # The voice is gated outside sung sections: keep each sung note inside its section.
    parts["vocals"][0].notes = _clip_notes_to_sections(parts["vocals"][0].notes, sections)
    sections = [
        SongSection(s.name, s.start, s.end, any(s.start <= n.start < s.end for n in parts["vocals"][0].notes))
        for s in sections
    ]

    vibrato = Vibrato(
        depth_cents=float(rng.uniform(25, 50)), rate_hz=float(rng.uniform(4.8, 6.3)),
        delay=float(rng.uniform(0.12, 0.3)), scoop_cents=float(rng.uniform(20, 60)),
        scoop_time=float(rng.uniform(0.025, 0.05)),
    )
    levels = {
        "vocals": float(rng.uniform(-17, -13)), "drums": float(rng.uniform(-19, -15)),
        "bass": float(rng.uniform(-21, -17)), "other": float(rng.uniform(-22, -17)),
    }
    mixture_peak = float(rng.uniform(0.6, 0.95))
    voice_presence_db = float(rng.uniform(2, 5))
    # Drawn last, so the arrangement above is the same as generator version 1 drew.
    reverb = _draw_reverb(rng)
    # Drawn after the reverb, so everything above is what version 2 drew.
    _draw_voices(rng, parts["vocals"], sections, scale, vibrato)
    return Song(
        name=name, bpm=bpm, key=key, mode=mode, duration=float(duration), sections=sections, parts=parts,
        stem_levels_db=levels, mixture_peak=mixture_peak, voice_presence_db=voice_presence_db, reverb=reverb,
    )


def _draw_voices(rng: np.random.Generator, vocal_parts: list[Part], sections: list[SongSection], scale,
                 vibrato: Vibrato) -> None:
    """The lead's singer and lyrics, and (in some songs) a backing part singing a harmony in
    the choruses, appended to ``vocal_parts``.

    Lyrics are drawn per section; a chorus sung again with as many notes repeats its words.
    """
    lead = vocal_parts[0]
    lead.singer = voice_model.draw_singer(rng, [n.pitch for n in lead.notes], vibrato=vibrato)
    notes = lead.notes
    phrase_ends = [i + 1 == len(notes) or notes[i + 1].start - n.end >= voice_model.PHRASE_GAP
                   for i, n in enumerate(notes)]
    lyrics: dict[tuple[str, int], list[Syllable]] = {}
    syllables: list[Syllable] = []
    for section in sections:
        inside = [i for i, n in enumerate(notes) if section.start <= n.start < section.end]
        if not inside:
            continue
        key = (section.name, len(inside))
        if section.name != "chorus" or key not in lyrics:
            lyrics[key] = voice_model.draw_syllables(rng, len(inside), [phrase_ends[i] for i in inside])
        syllables.extend(lyrics[key])
    lead.syllables = syllables

    if rng.random() >= _BACKING_PROBABILITY:
        return
    steps = int(rng.choice(list(_HARMONIES)))
    in_chorus = [i for i, n in enumerate(notes)
                 if any(s.sung and s.name == "chorus" and s.start <= n.start < s.end for s in sections)]
    if not in_chorus:
        return
    pitches = [p for p in range(12, 120) if p % 12 in scale]
    backing_notes = [Note(notes[i].start, notes[i].end, pitches[pitches.index(notes[i].pitch) + steps],
                          notes[i].velocity) for i in in_chorus]
    # a neighbouring voice type, at the lead's octave, so the interval stays a third or a fifth
    types = voice_model.VOICE_TYPES
    position = types.index(lead.singer.voice_type) + int(rng.integers(-1, 2))
    singer = voice_model.draw_singer(rng, [n.pitch for n in backing_notes],
                                     voice_type=types[int(np.clip(position, 0, len(types) - 1))],
                                     transpose=lead.singer.transpose)
    offset = int(rng.integers(20, 41)) * (1 if rng.random() < 0.5 else -1)
    vocal_parts.append(Part(
        name="", bank=0, program=lead.program, pan=int(np.clip(lead.pan + offset, 10, 117)), notes=backing_notes,
        legato=True, singer=singer, syllables=[syllables[i] for i in in_chorus],
        gain_db=float(rng.uniform(*_BACKING_GAIN_DB)), harmony=_HARMONIES[steps],
    ))


def _draw_reverb(rng: np.random.Generator) -> dict[str, Reverb]:
    """One room per song (reverberation time, damping); pre-delay, level and noise per stem."""
    room_rt60 = float(rng.uniform(*_RT60_RANGE))
    damping_hz = float(rng.uniform(*_DAMPING_RANGE_HZ))
    return {
        name: Reverb(
            rt60=room_rt60 * float(rng.uniform(*_RT60_SPREAD)), predelay=float(rng.uniform(*_PREDELAY_RANGE)),
            wet_db=float(rng.uniform(*_WET_RANGE_DB)), damping_hz=damping_hz, seed=int(rng.integers(2**63)),
        )
        for name in SOURCE_NAMES
    }


def _song_form(rng: np.random.Generator, nb_beats_total: float) -> list[tuple[str, float, float]]:
    """Sections as (name, start beat, length in beats); at least an intro and two more."""
    # Longest section length that still gives a few sections, so short songs have a form too.
    for length in (16, 8, 4, 2):
        if nb_beats_total / length >= 4:
            break
    nb_sections = max(3, math.ceil(nb_beats_total / length - 1e-9))
    form = _FORMS[rng.integers(len(_FORMS))]
    names = ["intro"] + [form[i % len(form)] for i in range(nb_sections - 1)]
    if nb_sections >= 5:
        names[-1] = "outro"
    sections = []
    for i, label in enumerate(names):
        start = i * length
        sections.append((label, float(start), float(min(length, nb_beats_total - start))))
    return sections


def _chord_timeline(rng: np.random.Generator, mode: str, sections) -> list[tuple[float, float, int]]:
    """(start beat, length, scale degree) of every chord; one progression per section kind."""
    progressions = _PROGRESSIONS[mode]
    picks = rng.choice(len(progressions), size=3, replace=False)
    by_kind = {"verse": progressions[picks[0]], "chorus": progressions[picks[1]], "bridge": progressions[picks[2]]}
    by_kind["intro"] = by_kind["verse"] if rng.random() < 0.5 else by_kind["chorus"]
    by_kind["break"] = by_kind["bridge"] if rng.random() < 0.5 else by_kind["chorus"]
    by_kind["outro"] = by_kind["chorus"]
    chord_beats = 4.0 if rng.random() < 0.75 else 2.0
    chords = []
    for label, start, length in sections:
        step = chord_beats if length >= 4 else 2.0
        progression = by_kind[label]
        t, i = 0.0, 0
        while t < length - 1e-9:
            chords.append((start + t, min(step, length - t), progression[i % len(progression)]))
            t += step
            i += 1
    return chords


def _chord_pitch_classes(degree: int, scale: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(scale[(degree + k) % 7] for k in (0, 2, 4))


def _chords_in(chords, start: float, end: float):
    return [c for c in chords if c[0] < end - 1e-9 and c[0] + c[1] > start + 1e-9]


def _chord_at(chords, beat: float):
    for chord in chords:
        if chord[0] <= beat + 1e-9 < chord[0] + chord[1]:
            return chord
    return chords[-1]


def _nearest_with_pc(target: float, pitch_classes, low: int, high: int) -> int:
    candidates = [p for p in range(low, high + 1) if p % 12 in pitch_classes]
    return min(candidates, key=lambda p: (abs(p - target), p))


def _melody(rng, start: float, end: float, chords, scale, low: int, high: int, centre: float) -> list[Note]:
    """A monophonic line in phrases with rests, in beats; notes stay in the scale.

    Strong beats land on chord tones, other notes move mostly by step, each phrase ends
    on a long chord tone and is followed by a rest of one to three beats.
    """
    pitches = [p for p in range(low, high + 1) if p % 12 in scale]
    notes: list[Note] = []
    t = start + float(rng.choice([0.0, 0.0, 0.5, 1.0])) if end - start >= 3 else start
    current = _nearest_with_pc(centre, _chord_pitch_classes(_chord_at(chords, t)[2], scale), low, high)
    while end - t >= 0.75:
        phrase_end = min(end, t + float(rng.choice([2.0, 3.0, 4.0, 4.0, 6.0, 8.0])))
        while t < phrase_end - 1e-9:
            remaining = phrase_end - t
            length = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            if remaining - length < 0.5:
                length = remaining  # the phrase ends on this note, held
            chord_pcs = _chord_pitch_classes(_chord_at(chords, t)[2], scale)
            if abs(t - round(t)) < 1e-9 and round(t) % 2 == 0 or length == remaining:
                # Strong beat or phrase end: a chord tone near the line, pulled toward the centre.
                target = current + rng.choice([-2, -1, 0, 1, 2]) + 0.3 * (centre - current)
                current = _nearest_with_pc(target, chord_pcs, low, high)
            else:
                i = pitches.index(current) if current in pitches else len(pitches) // 2
                step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
                i = int(np.clip(i + step, 0, len(pitches) - 1))
                current = pitches[i]
            notes.append(Note(t, t + length, current, int(rng.integers(84, 112))))
            t += length
        t += float(rng.choice([1.0, 1.5, 2.0, 3.0]))
    return notes


def _vocal_part(rng, sections, chords, scale, key, program) -> tuple[set[int], Part]:
    """The sung lead: a melody per section kind, repeated when the kind comes back."""
    tonic = 57 + (key - 9) % 12  # A3..G#4
    low, high = tonic - 5, tonic + 10
    part = Part(name="", bank=0, program=program, pan=int(rng.integers(58, 71)), legato=True)
    cache: dict[tuple[str, float], list[Note]] = {}
    sung: set[int] = set()
    for i, (label, start, length) in enumerate(sections):
        if label not in _SUNG_SECTIONS:
            continue
        key_ = (label, length)
        if key_ not in cache:
            centre = tonic + {"verse": 0.0, "chorus": 4.0, "bridge": 2.0}[label]
            # A short rest before the section ends lets the voice's release decay before the gate.
            end = length - min(1.0, 0.25 * length)
            cache[key_] = _melody(rng, 0.0, end, [(c[0] - start, c[1], c[2]) for c in
                                                  _chords_in(chords, start, start + length)], scale, low, high, centre)
        notes = [Note(n.start + start, n.end + start, n.pitch, n.velocity) for n in cache[key_]]
        if notes:
            sung.add(i)
            part.notes.extend(notes)
    if not sung:  # cannot happen with MIN_DURATION, kept so the promise holds
        raise RuntimeError("the arrangement has no sung section; raise the duration")
    return sung, part


def _drum_part(rng, sections) -> Part:
    """Kit grooves per section kind, a fill closing each section and a crash opening the next."""
    kit = int(rng.choice(_DRUM_KITS))
    names = list(_GROOVES)
    verse_groove = names[rng.integers(len(names))]
    chorus_groove = verse_groove if rng.random() < 0.5 else names[rng.integers(len(names))]
    intro_style = rng.choice(["full", "hats", "none"], p=[0.5, 0.3, 0.2])
    part = Part(name="", bank=128, program=kit, pan=64)
    for i, (label, start, length) in enumerate(sections):
        groove = dict(_GROOVES[chorus_groove if label in ("chorus", "outro") else verse_groove])
        if label == "intro":
            if intro_style == "none":
                continue
            if intro_style == "hats":
                groove = {k: v for k, v in groove.items() if k in (_HAT, _PEDAL_HAT, _OPEN_HAT, _RIDE, _KICK)}
        fill_beats = 0.0
        if i < len(sections) - 1 and length >= 4:
            fill_beats = 2.0 if length >= 8 else 1.0
        nb_steps = int(round(length * 4))
        fill_from = nb_steps - int(fill_beats * 4)
        for step in range(nb_steps):
            t = start + step / 4.0
            bar_step = step % 16
            if step >= fill_from:
                if step % (1 if rng.random() < 0.6 else 2) == 0:
                    drum = _SNARE if rng.random() < 0.35 else _TOMS[min(len(_TOMS) - 1, (step - fill_from) // 2)]
                    part.notes.append(Note(t, t + 0.5, drum, int(rng.integers(80, 120))))
                continue
            for drum, steps in groove.items():
                if bar_step in steps:
                    accent = 1.0 if bar_step % 4 == 0 else 0.8
                    velocity = int(np.clip(rng.normal(100 * accent, 8), 30, 127))
                    hold = 1.0 if drum in (_OPEN_HAT, _RIDE) else 0.5
                    part.notes.append(Note(t, t + hold, drum, velocity))
            if _KICK in groove and bar_step == 14 and rng.random() < 0.25:
                part.notes.append(Note(t, t + 0.5, _KICK, int(rng.integers(70, 100))))  # pickup kick
        if i > 0 and not (label == "intro"):
            part.notes.append(Note(start, start + 4.0, _CRASH, int(rng.integers(95, 120))))
    return part


def _bass_part(rng, sections, chords, scale) -> Part:
    """A line on the chord roots: held roots, eighths, root-fifth or syncopated."""
    program = int(rng.choice(_BASS_PROGRAMS))
    styles = ("roots", "eighths", "root_fifth", "syncopated")
    verse_style = styles[rng.integers(len(styles))]
    chorus_style = styles[rng.integers(len(styles))]
    part = Part(name="", bank=0, program=program, pan=int(rng.integers(60, 69)))
    patterns = {  # (onset, length, interval above the root) within a 4-beat chord
        "roots": ((0.0, 3.8, 0),),
        "eighths": tuple((k * 0.5, 0.45, 0) for k in range(8)),
        "root_fifth": ((0.0, 1.4, 0), (1.5, 0.9, 7), (2.5, 0.9, 12), (3.5, 0.45, 7)),
        "syncopated": ((0.0, 0.7, 0), (0.75, 0.6, 0), (1.5, 0.9, 12), (2.5, 0.45, 0), (3.0, 0.9, 7)),
    }
    for label, start, length in sections:
        style = chorus_style if label in ("chorus", "outro") else verse_style
        if label == "intro" and rng.random() < 0.3:
            continue  # some intros hold the bass back
        for chord_start, chord_len, degree in _chords_in(chords, start, start + length):
            root = 28 + (scale[degree % 7] - 4) % 12  # E1..D#2
            for onset, note_len, interval in patterns[style]:
                onset *= chord_len / 4.0
                if onset >= chord_len - 1e-9:
                    continue
                end = min(chord_start + onset + note_len * chord_len / 4.0, chord_start + chord_len)
                velocity = int(np.clip(rng.normal(100 if onset == 0 else 88, 6), 40, 127))
                part.notes.append(Note(chord_start + onset, end, root + interval, velocity))
    return part


def _voicing(degree: int, scale, previous: list[int] | None, nb_notes: int) -> list[int]:
    """Close voicing of the triad between MIDI 52 and 76, moved little from the previous one."""
    pcs = list(_chord_pitch_classes(degree, scale))
    if nb_notes > 3:
        pcs = pcs + [pcs[0]]
    centre = 62.0 if previous is None else float(np.mean(previous))
    best = None
    for bass_pitch in range(52, 65):
        if bass_pitch % 12 not in pcs:
            continue
        voicing, p = [bass_pitch], bass_pitch
        for _ in range(nb_notes - 1):
            p += 1
            while p % 12 not in pcs or (nb_notes <= 3 and p % 12 in [v % 12 for v in voicing]):
                p += 1
            voicing.append(p)
        cost = abs(float(np.mean(voicing)) - centre)
        if best is None or cost < best[0]:
            best = (cost, voicing)
    return best[1]


def _harmony_notes(rng, style: str, sections, chords, scale, only: tuple[str, ...] | None) -> list[Note]:
    notes: list[Note] = []
    previous = None
    comp_pattern = _COMP_PATTERNS[rng.integers(len(_COMP_PATTERNS))]
    arp_order = rng.choice(["up", "updown", "broken"])
    arp_step = 0.25 if rng.random() < 0.35 else 0.5
    for label, start, length in sections:
        if only is not None and label not in only:
            continue
        for chord_start, chord_len, degree in _chords_in(chords, start, start + length):
            voicing = _voicing(degree, scale, previous, 4 if style == "strum" else 3)
            previous = voicing
            scale_by = chord_len / 4.0
            if style == "pad":
                for p in voicing:
                    notes.append(Note(chord_start, chord_start + chord_len, p, int(rng.integers(60, 85))))
            elif style in ("block", "strum"):
                for k, (onset, note_len) in enumerate(comp_pattern):
                    onset *= scale_by
                    if onset >= chord_len - 1e-9:
                        continue
                    down = k % 2 == 0
                    order = voicing if down else voicing[::-1]
                    spread = 0.03 if style == "strum" else 0.0  # beats between strings
                    velocity = int(rng.integers(70, 100))
                    for j, p in enumerate(order):
                        t = chord_start + onset + j * spread
                        notes.append(Note(t, chord_start + onset + note_len * scale_by, p, velocity))
            else:  # arpeggio
                tones = voicing + [voicing[0] + 12]
                if arp_order == "updown":
                    sequence = tones + tones[-2:0:-1]
                elif arp_order == "broken":
                    sequence = [tones[0], tones[2], tones[1], tones[3]]
                else:
                    sequence = tones
                t, k = 0.0, 0
                while t < chord_len - 1e-9:
                    velocity = int(rng.integers(70, 100)) if k % 2 == 0 else int(rng.integers(55, 80))
                    notes.append(Note(chord_start + t, chord_start + min(t + arp_step * 1.5, chord_len),
                                      sequence[k % len(sequence)], velocity))
                    t += arp_step
                    k += 1
    return notes


def _other_parts(rng, sections, chords, scale, key) -> list[Part]:
    """Harmony (pad, block chords, strummed guitar or arpeggio), a second layer in the
    choruses, and an instrumental lead in the sections without vocals."""
    styles = list(_HARMONY_PROGRAMS)
    style = styles[rng.integers(len(styles))]
    parts = [Part(name="", bank=0, program=int(rng.choice(_HARMONY_PROGRAMS[style])), pan=int(rng.integers(34, 95)),
                  notes=_harmony_notes(rng, style, sections, chords, scale, None))]
    if rng.random() < 0.6:
        layer = "pad" if style != "pad" else "arp"
        pan = 127 - parts[0].pan + int(rng.integers(-10, 11))
        parts.append(Part(name="", bank=0, program=int(rng.choice(_HARMONY_PROGRAMS[layer])),
                          pan=int(np.clip(pan, 20, 108)),
                          notes=_harmony_notes(rng, layer, sections, chords, scale, ("chorus", "outro"))))
    if rng.random() < 0.7:
        lead = Part(name="", bank=0, program=int(rng.choice(_LEAD_PROGRAMS)), pan=int(rng.integers(44, 85)))
        tonic = 64 + (key - 4) % 12  # E4..D#5: above the voice's register
        for label, start, length in sections:
            if label in _SUNG_SECTIONS or length < 4:
                continue
            local = [(c[0] - start, c[1], c[2]) for c in _chords_in(chords, start, start + length)]
            for n in _melody(rng, 0.0, length - 0.5, local, scale, tonic - 5, tonic + 12, tonic + 3):
                lead.notes.append(Note(n.start + start, n.end + start, n.pitch, n.velocity))
        if lead.notes:
            parts.append(lead)
    return parts


def _to_seconds(rng, notes: list[Note], beat: float, jitter: float, duration: float, legato: bool) -> list[Note]:
    """Beats -> seconds with a random timing spread; notes starting after the song's end dropped."""
    out = []
    offsets = rng.normal(0.0, jitter, size=len(notes))
    for note, offset in zip(notes, offsets):
        start = max(0.0, note.start * beat + float(offset))
        end = min(note.end * beat + float(offset), duration)
        if start < duration - 1e-3 and end > start:
            out.append(Note(start, max(end, start + 0.02), note.pitch, note.velocity))
    if legato:  # one voice: a note ends at the latest where the next one starts
        out.sort(key=lambda n: n.start)
        out = [Note(n.start, min(n.end, out[i + 1].start) if i + 1 < len(out) else n.end, n.pitch, n.velocity)
               for i, n in enumerate(out)]
    return out


def _clip_notes_to_sections(notes: list[Note], sections: list[SongSection]) -> list[Note]:
    """Move each note inside the sung section that holds its middle (timing spread may
    have pushed its start a few ms before the section)."""
    out = []
    for note in notes:
        middle = 0.5 * (note.start + note.end)
        for section in sections:
            if section.sung and section.start <= middle < section.end:
                start, end = max(note.start, section.start), min(note.end, section.end)
                if end - start > 0.02:
                    out.append(Note(start, end, note.pitch, note.velocity))
                break
    return out


# ----------------------------------------------------------------------------------------
# Rendering: tinysoundfont, one synthesizer per stem
# ----------------------------------------------------------------------------------------


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
    """Sing the sung parts of the vocals stem (:func:`melunmix.voice.render_voice`), panned.

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


def _add_reverb(audio: np.ndarray, reverb: Reverb, sample_rate: int) -> np.ndarray:
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
        ``"mixture"`` and every name of ``SOURCE_NAMES`` -> float32 array of shape
        ``(nb_samples, 2)``, ``nb_samples = round(song.duration * sample_rate)``.
    """
    nb_samples = int(round(song.duration * sample_rate))
    fade_out = np.linspace(1.0, 0.0, min(nb_samples, int(0.03 * sample_rate)), dtype=np.float32)
    out = {}
    for name in SOURCE_NAMES:
        if name == "vocals":
            audio = render_vocals(song.parts[name], nb_samples, sample_rate)
            audio = _presence_filter(audio, sample_rate, song.voice_presence_db)
            audio *= _vocal_gate(song.sections, nb_samples, sample_rate)[:, None]
            audio = audio.astype(np.float32)
        else:
            audio = render_stem(song.parts[name], nb_samples, sample_rate)
        if song.reverb is not None:
            _add_reverb(audio, song.reverb[name], sample_rate)
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
    peak_stems = max(_peak(out[name]) for name in SOURCE_NAMES)
    scale = np.float32(min(song.mixture_peak / max(peak_mix, 1e-12), PEAK_LIMIT * 0.98 / max(peak_stems, 1e-12)))
    for name in SOURCE_NAMES:
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


def _name_parts(song: Song) -> None:
    """Fill every part's ``name`` with its preset's name, or a sung part's with its singer
    (for the manifest and the data card)."""
    for stem_parts in song.parts.values():
        for part in stem_parts:
            if part.singer is not None:
                role = f"backing voice, {part.harmony}" if part.harmony else "lead voice"
                part.name = f"{role} ({part.singer.voice_type})"
            else:
                part.name = _preset_names().get((part.bank, part.program), f"bank {part.bank} program {part.program}")


# ----------------------------------------------------------------------------------------
# The dataset on disk
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlannedTrack:
    split: str  # train | valid | test
    index: int

    @property
    def subset(self) -> str:
        return "test" if self.split == "test" else "train"


def _plan(nb_train: int, nb_valid: int, nb_test: int) -> list[_PlannedTrack]:
    return ([_PlannedTrack("train", i) for i in range(nb_train - nb_valid)]
            + [_PlannedTrack("valid", i) for i in range(nb_valid)]
            + [_PlannedTrack("test", i) for i in range(nb_test)])


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_arguments(nb_train, nb_valid, nb_test, duration, seed, sample_rate) -> dict[str, Any]:
    nb_train = _check_count("nb_train", nb_train, 1)
    nb_valid = _check_count("nb_valid", nb_valid, 0)
    nb_test = _check_count("nb_test", nb_test, 1)
    if nb_valid >= nb_train:
        raise ValueError(
            f"nb_valid ({nb_valid}) must be smaller than nb_train ({nb_train}): the validation songs are taken "
            "from the training songs (as in MUSDB18) and at least one must remain for training"
        )
    seed = _check_count("seed", seed, 0)
    if isinstance(duration, bool) or not isinstance(duration, numbers.Real) or not math.isfinite(duration):
        raise ValueError(f"duration must be a finite number of seconds, got {duration!r}")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(
            f"duration must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds per song, got {duration:g}"
        )
    sample_rate = _check_count("sample_rate", sample_rate, 8000)
    if sample_rate > 192000:
        raise ValueError(f"sample_rate must be at most 192000 Hz, got {sample_rate}")
    return {"nb_train": nb_train, "nb_valid": nb_valid, "nb_test": nb_test, "duration": float(duration),
            "seed": seed, "sample_rate": sample_rate, "generator_version": GENERATOR_VERSION}


def _differences(found: dict, wanted: dict) -> str:
    keys = [k for k in wanted if found.get(k) != wanted[k]]
    return ", ".join(f"{k}={found.get(k)!r} there, {wanted[k]!r} asked" for k in keys)


def _prepare_out_dir(out_dir: Path, params: dict) -> bool:
    """Check ``out_dir`` against the asked parameters; True when the dataset there is complete."""
    fix = f"choose another output folder (--out) or delete {out_dir}"
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir {out_dir} is a file; {fix}")
    marker, in_progress = out_dir / _MARKER, out_dir / _PARAMETERS
    for path in (marker, in_progress):
        if path.is_file():
            try:
                found = json.loads(path.read_text())["parameters"]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path} is unreadable ({err}); {fix}") from err
            if isinstance(found, dict) and found.get("generator_version") != GENERATOR_VERSION:
                # Same arguments, other code: the files there are not what this version renders.
                raise ValueError(
                    f"{out_dir} holds a generated dataset made by generator version "
                    f"{found.get('generator_version')!r}; this code is version {GENERATOR_VERSION} and renders "
                    f"different audio for the same arguments. Delete {out_dir} to regenerate it, or choose "
                    "another output folder (--out)"
                )
            if found != params:
                raise ValueError(
                    f"{out_dir} already holds a generated dataset made with other parameters "
                    f"({_differences(found, params)}); {fix}"
                )
            return path == marker
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise ValueError(f"out_dir {out_dir} is not empty and holds no generated dataset; {fix}")
    return False


def _track_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in TRACK_FILES)


def _write_track(out_dir: Path, subset: str, song: Song, sample_rate: int) -> None:
    """Render and write one track folder; it appears under its name only once complete."""
    audio = render_song(song, sample_rate)
    staging = out_dir / _PARTIAL_DIR / song.name
    if staging.exists():
        shutil.rmtree(staging)  # left by a killed run
    staging.mkdir(parents=True)
    for name in ("mixture",) + SOURCE_NAMES:
        # scipy's writer: float32 WAV (WAVE_FORMAT_IEEE_FLOAT) without the time-stamped
        # PEAK chunk libsndfile adds, so the same song gives the same bytes.
        scipy.io.wavfile.write(staging / f"{name}.wav", sample_rate, audio[name])
    final = out_dir / subset / song.name
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        shutil.rmtree(final)  # an incomplete folder (a file deleted by hand)
    os.replace(staging, final)




def _setup(validation_names: list[str], sample_rate: int) -> dict:
    """A musdb setup file (the keys of musdb's own configs/mus.yaml) for this dataset."""
    return {
        "sample_rate": float(sample_rate),
        "sources": {name: f"{name}.wav" for name in ("vocals", "drums", "bass", "other")},
        "mixture": "mixture.wav",
        "stem_ids": {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4},
        "targets": {
            "vocals": {"vocals": 1}, "drums": {"drums": 1}, "bass": {"bass": 1}, "other": {"other": 1},
            "accompaniment": {"bass": 1, "drums": 1, "other": 1},
            "linear_mixture": {"vocals": 1, "bass": 1, "drums": 1, "other": 1},
        },
        "validation_tracks": list(validation_names),
    }


def make_dataset(
    out_dir: str | os.PathLike,
    nb_train: int = 8,
    nb_valid: int = 2,
    nb_test: int = 4,
    duration: float = 30.0,
    seed: int = 0,
    sample_rate: int = 44100,
    progress: bool = True,
) -> Path:
    """Generate the built-in dataset in the MUSDB18-HQ layout (or finish an interrupted one).

    Parameters
    ----------
    out_dir : path
        Dataset root to create. It must be missing, empty, or hold a (complete or
        interrupted) dataset made with the same parameters.
    nb_train : int
        Songs under ``train/``, the validation songs included (>= 1).
    nb_valid : int
        How many of the ``nb_train`` songs form the validation split (0 <= nb_valid < nb_train);
        they are listed in ``setup.yaml``'s ``validation_tracks``.
    nb_test : int
        Songs under ``test/`` (>= 1).
    duration : float
        Seconds per song, between ``MIN_DURATION`` and ``MAX_DURATION``.
    seed : int
        Seed of the whole dataset (>= 0); song ``i`` of split ``s`` draws from a generator
        seeded with ``(seed, s, i)``.
    sample_rate : int
        Hz (44100 as MUSDB18).
    progress : bool
        Show a progress bar (tqdm, on stderr).

    Returns
    -------
    Path
        ``out_dir``, holding ``train/``, ``test/``, ``setup.yaml``, ``README.md`` and
        ``dataset.json`` (written last: the dataset is complete when it exists).

    Raises
    ------
    ValueError
        A bad argument (the message names it), or ``out_dir`` holding something else: a
        dataset made with other parameters, one made by another ``GENERATOR_VERSION``
        (delete it to regenerate), or unrelated files.

    Notes
    -----
    Every track is written to ``out_dir/.partial/`` and renamed into place when complete,
    so a killed run leaves no half-written track; calling again with the same arguments
    renders only the missing tracks, and does nothing once the dataset is complete.
    Every stem is a 32-bit float stereo WAV; ``mixture.wav`` holds the float32 sum of the
    four stems exactly and no file peaks above ``PEAK_LIMIT``.
    """
    params = _check_arguments(nb_train, nb_valid, nb_test, duration, seed, sample_rate)
    out_dir = Path(out_dir).expanduser()
    plan = _plan(params["nb_train"], params["nb_valid"], params["nb_test"])
    songs = [arrange_song(params["seed"], t.split, t.index, params["duration"]) for t in plan]
    if _prepare_out_dir(out_dir, params):
        if all(_track_complete(out_dir / t.subset / s.name) for t, s in zip(plan, songs)):
            return out_dir
        (out_dir / _MARKER).unlink()  # a track was deleted by hand: render it again below
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / _PARAMETERS, json.dumps({"parameters": params}, indent=2) + "\n")

    from tqdm import tqdm

    for song in songs:
        _name_parts(song)
    todo = [(t, s) for t, s in zip(plan, songs) if not _track_complete(out_dir / t.subset / s.name)]
    with tqdm(total=len(plan), initial=len(plan) - len(todo), desc="make-dataset", unit="song",
              disable=not progress) as bar:
        for track, song in todo:
            bar.set_postfix_str(song.name, refresh=False)
            _write_track(out_dir, track.subset, song, params["sample_rate"])
            bar.update(1)

    validation = [s.name for t, s in zip(plan, songs) if t.split == "valid"]
    manifest = _manifest(out_dir, params, plan, songs)
    write_text(out_dir / "setup.yaml", yaml.safe_dump(_setup(validation, params["sample_rate"]), sort_keys=False))
    write_text(out_dir / "README.md", _data_card(params, plan, songs, manifest))
    write_text(out_dir / _MARKER, json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out_dir / _PARTIAL_DIR, ignore_errors=True)
    return out_dir


def _manifest(out_dir: Path, params: dict, plan, songs) -> dict:
    tracks = []
    fingerprint = hashlib.sha256()
    for track, song in zip(plan, songs):
        folder = out_dir / track.subset / song.name
        files = {name: sha256_file(folder / name) for name in TRACK_FILES}
        for name, digest in files.items():
            fingerprint.update(f"{track.subset}/{song.name}/{name}\t{digest}\n".encode())
        tracks.append({
            "name": song.name,
            "subset": track.subset,
            "split": track.split,
            "duration": song.duration,
            "nb_samples": int(round(song.duration * params["sample_rate"])),
            "bpm": song.bpm,
            "key": f"{_KEY_NAMES[song.key]} {song.mode}",
            "sections": [{"name": s.name, "start": s.start, "end": s.end, "vocals": s.sung} for s in song.sections],
            "instruments": {stem: [p.name for p in song.parts[stem]] for stem in SOURCE_NAMES},
            "voice": _voice_entry(song),
            "reverb": None if song.reverb is None else {
                stem: {"rt60": r.rt60, "predelay": r.predelay, "wet_db": r.wet_db, "damping_hz": r.damping_hz}
                for stem, r in song.reverb.items()
            },
            "sha256": files,
        })
    soundfont = soundfont_path()
    return {
        "format": GENERATED_FORMAT,
        "parameters": params,
        "setup_file": "setup.yaml",
        "sources": list(SOURCE_NAMES),
        "mixture": "((vocals + drums) + bass) + other, float32",
        "reverb_tail": REVERB_TAIL,
        "soundfont": {"file": SOUNDFONT_FILE, "sha256": sha256_file(soundfont), "shipped_with": "pretty_midi"},
        "software": package_versions(SOFTWARE_PACKAGES, python=False, missing="unknown"),
        "fingerprint": fingerprint.hexdigest(),
        "tracks": tracks,
    }


def _voice_entry(song: Song) -> dict:
    """The singers of a song, the backing's interval and level, and the lead's lyrics."""
    lead, *backing = song.parts["vocals"]
    return {
        "lead": lead.singer.describe(),
        "backing": [{**p.singer.describe(), "harmony": p.harmony, "gain_db": round(p.gain_db, 2)} for p in backing],
        "lyrics": " ".join(s.text for s in lead.syllables),
    }


def _voice_summary(song: Song) -> str:
    lead, *backing = song.parts["vocals"]
    text = lead.singer.voice_type
    return text + "".join(f" + {p.singer.voice_type} {p.harmony}" for p in backing)


def _data_card(params: dict, plan, songs, manifest: dict) -> str:
    counts = {split: sum(t.split == split for t in plan) for split in _SPLIT_CODES}
    total_minutes = len(plan) * params["duration"] / 60
    versions = manifest["software"]
    rows = "\n".join(
        f"| {s.name} | {t.subset} | {t.split} | {s.bpm:.0f} | {_KEY_NAMES[s.key]} {s.mode} | "
        f"{' '.join(x.name for x in s.sections)} | {_voice_summary(s)} | {', '.join(p.name for p in s.parts['other'])} |"
        for t, s in zip(plan, songs)
    )
    return f"""# Generated MUSDB18-format dataset

Made by `melunmix.synth.make_dataset` (generator version {GENERATOR_VERSION}); the command
`melunmix make-dataset --out DIR --train {params['nb_train']} --valid {params['nb_valid']} \
--test {params['nb_test']} --duration {params['duration']:g} --seed {params['seed']}` makes the same bytes.

## Contents
- {len(plan)} songs of {params['duration']:g} s ({total_minutes:.1f} minutes in all), {params['sample_rate']} Hz,
  stereo, 32-bit float WAV.
- `train/`: {params['nb_train']} songs, of which {counts['valid']} form the validation split
  (listed in `setup.yaml` under `validation_tracks`, as musdb's own setup file lists
  MUSDB18's 14); `test/`: {counts['test']} songs.
- Each song folder holds `vocals.wav`, `drums.wav`, `bass.wav`, `other.wav` and
  `mixture.wav`, which is exactly their float32 sum `((vocals + drums) + bass) + other`.
  The song is scaled so that no file peaks above {PEAK_LIMIT}.
- `dataset.json`: parameters, every song's tempo, key, sections (with whether the voice
  sings in them), instruments, singers (and the lead's syllables), reverb and file hashes,
  and a fingerprint of all the audio.

Read it with musdb: `musdb.DB(root, is_wav=True, setup_file="setup.yaml", subsets="train", split="valid")`.

## How it was made
Each song draws from its own random generator, seeded by (seed={params['seed']}, split, index):
tempo (84-140 BPM), key and mode, a chord progression per section kind, a song form
(intro, verse, chorus, bridge, break, outro), instruments, panning and levels, and a
singer. Drums, bass and other are rendered stem by stem with tinysoundfont
{versions['tinysoundfont']} from the General MIDI soundfont `{SOUNDFONT_FILE}` (sha256
`{manifest['soundfont']['sha256'][:16]}...`); the vocals are sung (see "The voice" below):
- **vocals**: a monophonic melody in the song's scale, in phrases with rests, sung on
  syllables by the song's singer; in {_BACKING_PROBABILITY:.0%} of the songs a second singer
  adds a harmony ({', '.join(_HARMONIES.values())}, in the song's scale) in the choruses,
  {-_BACKING_GAIN_DB[1]:g}-{-_BACKING_GAIN_DB[0]:g} dB below the lead and panned apart;
  a presence boost near 3 kHz; silent (exact zeros) in the intro, breaks and outro, except
  for the reverb tail of the section before (at most {REVERB_TAIL:g} s, see below).
- **drums**: a kit (bank 128) playing grooves, fills at section ends, crashes on downbeats.
- **bass**: a GM bass on the chord roots (held, eighths, root-fifth or syncopated).
- **other**: chords as pads, block chords, strummed guitar or arpeggios; a second layer
  in choruses; often an instrumental lead (guitar, sax, flute, synth...) where no one sings.
- **reverb**: every stem, after panning, gets its own small room, fed the mean of the
  stem's two channels (as in most studio reverbs): an impulse response of
  Gaussian noise drawn independently for the left and the right channel, low-passed
  ({_DAMPING_RANGE_HZ[0] / 1000:g}-{_DAMPING_RANGE_HZ[1] / 1000:g} kHz per song), decaying by 60 dB over RT60
  ({_RT60_RANGE[0]:g}-{_RT60_RANGE[1]:g} s per song, within +-10 % per stem) and cut there, after a
  {_PREDELAY_RANGE[0] * 1000:g}-{_PREDELAY_RANGE[1] * 1000:g} ms pre-delay, at {_WET_RANGE_DB[0]:g} to
  {_WET_RANGE_DB[1]:g} dB relative to the dry sound (per stem; values in `dataset.json`). A stem is
  exactly silent from {REVERB_TAIL:g} s after its last sound at the latest. Without it each
  stem's channels would be one signal panned (linearly dependent), which makes BSS Eval
  v4's split into SIR and ISR numerically unstable (swings of up to 20 dB when the
  references are rounded to 16 bit); with it the split is stable.

## The voice
A source-filter singing synthesis written for this generator with numpy and scipy
(`melunmix.voice`), not a text-to-speech engine: sustained, pitched vowels on the notes,
consonants at the syllables' edges.
- **Singer** (per song, from its seed): voice type (bass, baritone, tenor, countertenor,
  alto or soprano; the written line moves by whole octaves into the type's range), vocal
  tract length (every formant x0.94-1.06), vowel space (vowels spread x0.85-1.15 around
  their centre), vibrato (25-50 cents at 4.8-6.3 Hz, fading in 0.12-0.3 s after each
  onset), portamento (40-100 ms glides between notes), brightness, breathiness, jitter,
  shimmer, pitch drift and the level of the breaths.
- **Source**: the glottal flow derivative of Rosenberg's pulse (Rosenberg, JASA 1971) read
  from the pitch's running phase, the closure's step band-limited by a polynomial BLEP
  (Välimäki & Huovilainen, IEEE SPM 2007), a one-pole spectral tilt (the return phase of
  the Liljencrants-Fant model; its corner 1.2-6 kHz is the brightness), a random amplitude
  per glottal cycle (shimmer), fast and slow random pitch perturbations (jitter, drift),
  and aspiration noise gated by the glottal cycle (breathiness).
- **Vocal tract**: five formants per vowel, applied as a time-varying spectral envelope
  (the sum of five second-order resonances) to the source's STFT (46 ms frames, 75 %
  overlap). Vowels a, e, i, o, u with their formant frequencies, levels and bandwidths for
  soprano, alto, countertenor, tenor and bass from the Csound manual's table "Formant
  values" (the sung-vowel data of IRCAM's CHANT); a baritone is the geometric mean of bass
  and tenor.
- **Syllables**: one per note (a few notes continue the previous vowel, a melisma); a
  chorus sung again repeats its words. Onsets: plosives p t k b d g (closure, a band-passed
  noise burst, aspiration after the voiceless ones), fricatives s sh f v z (band-passed
  noise; voiced ones keep the voicing) and h (aspiration through the vowel's formants),
  nasals m n and approximants l r w j (voiced formant targets); codas n m s t l k z, mostly
  at phrase ends. Formants move from the consonant's locus into the vowel (Delattre,
  Liberman & Cooper, JASA 1955; Klatt, JASA 1980).
- **Breaths**: an inhalation (noise through an open, damped tract) in a rest before a phrase.
- Why not Praat's KlattGrid (`praat-parselmouth`), fast enough here: its noise sources
  draw from Praat's own random generator, which cannot be seeded from Python, so the same
  song would not give the same bytes twice.

These are synthetic songs: useful to exercise a separation pipeline end to end and to
compare methods on equal terms, not a substitute for MUSDB18's recorded music.

## Songs
| name | subset | split | BPM | key | form | voice | other |
|---|---|---|---|---|---|---|---|
{rows}

## Soundfont and licences
- `{SOUNDFONT_FILE}` ("TimGM6mb", a 6 MB General MIDI bank by Tim Brechbill) is read from the
  installed `pretty_midi` {versions['pretty_midi']} package, which ships it as its default
  soundfont. `pretty_midi` is MIT-licensed (its LICENSE.txt, copyright Colin Raffel); its
  metadata and files say nothing else about the soundfont, and the soundfont's own INFO
  chunk names it and the tool that built it (Awave Studio) but holds no copyright or
  licence field.
- Outside the package: TimGM6mb is distributed with MuseScore and by Debian
  (`timgm6mb-soundfont`) under the GNU GPL, version 2. Whether audio rendered with a
  soundfont is covered by the soundfont's licence is not settled; check before you
  redistribute these files.
- tinysoundfont (the renderer) is MIT-licensed.
"""
