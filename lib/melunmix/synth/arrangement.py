"""Arrangement: a generated song as notes in seconds, drawn from one random generator.

A :class:`Song` holds everything random about one song (tempo, key, chord progression,
form, parts and their notes, the singers and their syllables, levels, rooms); rendering it
(:mod:`melunmix.synth.rendering`) draws nothing more. Each song draws from its own
generator seeded by ``(seed, split, index)``, so a song does not depend on how many others
are made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import voice as voice_model
from ..base.names import SOURCES
from .voice import Singer, Syllable, Vibrato

#: Stems of a track, in the order the mixture sums them: ``((vocals + drums) + bass) + other``.
# Mixed into every song's seed. Not GENERATOR_VERSION: a change of rendering (as the reverb
# of version 2) keeps the same songs, so results of two versions compare song by song.
_ARRANGEMENT_SEED_VERSION = 1
#: Shortest song (seconds): enough for an intro, a sung section and one more.
MIN_DURATION = 4.0
#: Longest song (seconds); stems are held in memory while rendering.
MAX_DURATION = 600.0
#: Split name -> number mixed into the per-song seed (never reorder: it changes every song).
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
# The room of a song: reverberation time (s), high-frequency damping (Hz); per stem: the
# reverberation time's spread around the room's, pre-delay (s) and wet level (dB re dry).
RT60_RANGE = (0.3, 0.8)
_RT60_SPREAD = (0.9, 1.1)
DAMPING_RANGE_HZ = (4000.0, 10000.0)
PREDELAY_RANGE = (0.005, 0.03)
WET_RANGE_DB = (-18.0, -8.0)

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
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
BACKING_PROBABILITY = 0.4
HARMONIES = {2: "a third above", -2: "a third below", -4: "a fifth below"}
BACKING_GAIN_DB = (-10.0, -5.0)
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
    sung by a singer (``singer`` set: :func:`melunmix.synth.voice.render_voice`, one syllable per note)."""

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
        np.random.SeedSequence([_ARRANGEMENT_SEED_VERSION, seed, SPLIT_CODES[split], index])
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

    if rng.random() >= BACKING_PROBABILITY:
        return
    steps = int(rng.choice(list(HARMONIES)))
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
        gain_db=float(rng.uniform(*BACKING_GAIN_DB)), harmony=HARMONIES[steps],
    ))


def _draw_reverb(rng: np.random.Generator) -> dict[str, Reverb]:
    """One room per song (reverberation time, damping); pre-delay, level and noise per stem."""
    room_rt60 = float(rng.uniform(*RT60_RANGE))
    damping_hz = float(rng.uniform(*DAMPING_RANGE_HZ))
    return {
        name: Reverb(
            rt60=room_rt60 * float(rng.uniform(*_RT60_SPREAD)), predelay=float(rng.uniform(*PREDELAY_RANGE)),
            wet_db=float(rng.uniform(*WET_RANGE_DB)), damping_hz=damping_hz, seed=int(rng.integers(2**63)),
        )
        for name in SOURCES
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
