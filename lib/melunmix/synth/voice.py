"""A singing voice for the built-in dataset: source-filter synthesis of sung syllables.

Not a text-to-speech engine: a melody is sung on syllables (consonant + vowel + optional
final consonant), with the sustained, pitched vowels of singing. The model:

- **Source** (time domain, per sample): a glottal flow derivative after Rosenberg's
  trigonometric pulse (Rosenberg, "Effect of glottal pulse shape on the quality of natural
  vowels", JASA 1971) evaluated from the running phase of the pitch, with the closure's
  step made band-limited by a polynomial BLEP (Välimäki & Huovilainen, "Antialiasing
  oscillators in subtractive synthesis", IEEE SPM 2007), then low-passed once: the return
  phase of the Liljencrants-Fant model (Fant, Liljencrants & Lin, STL-QPSR 1985) as a
  spectral tilt whose corner is the singer's brightness. Pitch: the written note moved by
  the singer's octave, glides between notes (portamento), a scoop into each phrase,
  vibrato fading in after each onset, slow drift, jitter (fast random pitch perturbation)
  and shimmer (a random amplitude per glottal cycle). Aspiration noise gated by the
  glottal cycle gives breathiness.
- **Filter** (STFT domain): the vocal tract as a time-varying spectral envelope, the sum of
  five formant resonances (second-order magnitude responses, each normalised to its peak
  and weighted by its level), applied frame by frame to the source's STFT and overlap-added
  back. Formant frequencies, bandwidths and levels of the sung vowels a, e, i, o, u come
  from the Csound manual's table "Formant values" (Appendix, for soprano, alto,
  countertenor, tenor and bass; the data of IRCAM's CHANT/FOF singing synthesis); a
  baritone is the geometric mean of bass and tenor. Each singer scales every formant
  (vocal-tract length) and the spread of the vowels around their centre (vowel space).
- **Consonants** at syllable onsets (and some codas): plosives (closure, a noise burst
  band-passed by place, aspiration for the voiceless ones), fricatives (band-passed noise
  for s, sh, f, v, z; aspiration through the next vowel's formants for h), nasals and
  approximants (m, n, l, r, w, j) as voiced formant targets moving into the vowel. Formant
  loci follow Delattre, Liberman & Cooper ("Acoustic loci and transitional cues for
  consonants", JASA 1955: labial F2 near 720 Hz, alveolar near 1800 Hz) and the consonant
  values of Klatt's synthesiser (Klatt, "Software for a cascade/parallel formant
  synthesizer", JASA 1980), for a male tract, scaled like the vowels.
- **Breaths**: an inhalation (noise through an open, damped tract) in the rest before a
  phrase.

Everything random (jitter, shimmer, drift, noise) is drawn from ``Singer.seed`` and the
phrase's index, so a rendering is a pure function of its arguments (same bytes).

Why numpy/scipy rather than Praat's KlattGrid (``praat-parselmouth``): KlattGrid's noise
sources (aspiration, frication, flutter) draw from Praat's own random generator, which
cannot be seeded from Python, so two renderings of the same grid differ: the dataset's
promise of the same bytes for the same arguments would break.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.fft
import scipy.signal

#: Voice types, low to high.
VOICE_TYPES = ("bass", "baritone", "tenor", "countertenor", "alto", "soprano")
#: Sung vowels of the formant table.
VOWELS = ("a", "e", "i", "o", "u")

# Csound manual, Appendix "Formant values": per voice type and vowel, the five formants'
# frequencies (Hz), levels (dB re the first) and bandwidths (Hz).
_FORMANT_TABLE = {
    "soprano": {
        "a": ((800, 1150, 2900, 3900, 4950), (0, -6, -32, -20, -50), (80, 90, 120, 130, 140)),
        "e": ((350, 2000, 2800, 3600, 4950), (0, -20, -15, -40, -56), (60, 100, 120, 150, 200)),
        "i": ((270, 2140, 2950, 3900, 4950), (0, -12, -26, -26, -44), (60, 90, 100, 120, 120)),
        "o": ((450, 800, 2830, 3800, 4950), (0, -11, -22, -22, -50), (70, 80, 100, 130, 135)),
        "u": ((325, 700, 2700, 3800, 4950), (0, -16, -35, -40, -60), (50, 60, 170, 180, 200)),
    },
    "alto": {
        "a": ((800, 1150, 2800, 3500, 4950), (0, -4, -20, -36, -60), (80, 90, 120, 130, 140)),
        "e": ((400, 1600, 2700, 3300, 4950), (0, -24, -30, -35, -60), (60, 80, 120, 150, 200)),
        "i": ((350, 1700, 2700, 3700, 4950), (0, -20, -30, -36, -60), (50, 100, 120, 150, 200)),
        "o": ((450, 800, 2830, 3500, 4950), (0, -9, -16, -28, -55), (70, 80, 100, 130, 135)),
        "u": ((325, 700, 2530, 3500, 4950), (0, -12, -30, -40, -64), (50, 60, 170, 180, 200)),
    },
    "countertenor": {
        "a": ((660, 1120, 2750, 3000, 3350), (0, -6, -23, -24, -38), (80, 90, 120, 130, 140)),
        "e": ((440, 1800, 2700, 3000, 3300), (0, -14, -18, -20, -20), (70, 80, 100, 120, 120)),
        "i": ((270, 1850, 2900, 3350, 3590), (0, -24, -24, -36, -36), (40, 90, 100, 120, 120)),
        "o": ((430, 820, 2700, 3000, 3300), (0, -10, -26, -22, -34), (40, 80, 100, 120, 120)),
        "u": ((370, 630, 2750, 3000, 3400), (0, -20, -23, -30, -34), (40, 60, 100, 120, 120)),
    },
    "tenor": {
        "a": ((650, 1080, 2650, 2900, 3250), (0, -6, -7, -8, -22), (80, 90, 120, 130, 140)),
        "e": ((400, 1700, 2600, 3200, 3580), (0, -14, -12, -14, -20), (70, 80, 100, 120, 120)),
        "i": ((290, 1870, 2800, 3250, 3540), (0, -15, -18, -20, -30), (40, 90, 100, 120, 120)),
        "o": ((400, 800, 2600, 2800, 3000), (0, -10, -12, -12, -26), (40, 80, 100, 120, 120)),
        "u": ((350, 600, 2700, 2900, 3300), (0, -20, -17, -14, -26), (40, 60, 100, 120, 120)),
    },
    "bass": {
        "a": ((600, 1040, 2250, 2450, 2750), (0, -7, -9, -9, -20), (60, 70, 110, 120, 130)),
        "e": ((400, 1620, 2400, 2800, 3100), (0, -12, -9, -12, -18), (40, 80, 100, 120, 120)),
        "i": ((250, 1750, 2600, 3050, 3340), (0, -30, -16, -22, -28), (60, 90, 100, 120, 120)),
        "o": ((400, 750, 2400, 2600, 2900), (0, -11, -21, -20, -40), (40, 80, 100, 120, 120)),
        "u": ((350, 600, 2400, 2675, 2950), (0, -20, -32, -28, -36), (40, 80, 100, 120, 120)),
    },
}

#: Comfortable sung range (MIDI keys, lowest and highest) of each voice type; a singer sings
#: the written line moved by whole octaves to sit in it (see :func:`octave_for`).
VOICE_RANGES = {"bass": (40, 64), "baritone": (45, 65), "tenor": (48, 69), "countertenor": (55, 76),
                "alto": (53, 76), "soprano": (60, 81)}

#: Narrowest formant bandwidth rendered (Hz): the STFT's bins are 21.5 Hz apart at 44.1 kHz,
#: and a narrower peak would flicker as vibrato moves the harmonics across it.
MIN_BANDWIDTH = 50.0


@functools.lru_cache(maxsize=None)
def vowel_formants(voice_type: str, vowel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Formant frequencies (Hz), levels (dB re the first) and bandwidths (Hz) of a table vowel.

    Parameters
    ----------
    voice_type : str
        One of ``VOICE_TYPES``; ``"baritone"`` is the geometric mean of ``"bass"`` and
        ``"tenor"`` (frequencies and bandwidths; levels: the mean in dB).
    vowel : str
        One of ``VOWELS``.

    Returns
    -------
    tuple of three float arrays, shape (5,)
    """
    if voice_type not in VOICE_TYPES:
        raise ValueError(f"voice type must be one of {', '.join(VOICE_TYPES)}, got {voice_type!r}")
    if vowel not in VOWELS:
        raise ValueError(f"vowel must be one of {', '.join(VOWELS)}, got {vowel!r}")
    if voice_type == "baritone":
        low, high = _FORMANT_TABLE["bass"][vowel], _FORMANT_TABLE["tenor"][vowel]
        freqs = np.sqrt(np.multiply(low[0], high[0], dtype=float))
        levels = 0.5 * (np.asarray(low[1], float) + np.asarray(high[1], float))
        bandwidths = np.sqrt(np.multiply(low[2], high[2], dtype=float))
        return freqs, levels, bandwidths
    freqs, levels, bandwidths = _FORMANT_TABLE[voice_type][vowel]
    return np.asarray(freqs, float), np.asarray(levels, float), np.asarray(bandwidths, float)


@functools.lru_cache(maxsize=None)
def tract_scale(voice_type: str) -> float:
    """Mean ratio of the voice type's F2 and F3 to the tenor's over the five vowels: how much
    shorter its vocal tract is, applied to the consonant loci (given for a male tract)."""
    ratios = [vowel_formants(voice_type, v)[0][1:3] / vowel_formants("tenor", v)[0][1:3] for v in VOWELS]
    return float(np.exp(np.mean(np.log(ratios))))


# ----------------------------------------------------------------------------------------
# Consonants
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consonant:
    """One consonant: how it sounds at a syllable's onset (or as its coda).

    ``kind`` is ``"plosive"`` (closure, burst, aspiration when voiceless), ``"fricative"``
    (band-passed noise), ``"aspirate"`` (h: aspiration through the vowel's formants),
    ``"nasal"`` or ``"approximant"`` (voiced formant targets). ``loci`` are F1-F3 (Hz) of a
    male tract where the transition into the vowel starts; ``noise_band`` (Hz) and
    ``noise_db`` (re the vowel) shape a burst or a fricative's noise.
    """

    kind: str
    voiced: bool
    duration: float  # seconds, before shortening to fit the note
    loci: tuple[float, float, float]
    noise_band: tuple[float, float] = (0.0, 0.0)
    noise_db: float = -120.0
    voicing_db: float = 0.0  # level of the voicing during the consonant, re the vowel


_LABIAL, _ALVEOLAR, _VELAR = (250.0, 800.0, 2200.0), (250.0, 1750.0, 2600.0), (250.0, 1900.0, 2200.0)
CONSONANTS = {
    "p": Consonant("plosive", False, 0.10, _LABIAL, (400.0, 3000.0), -8.0),
    "t": Consonant("plosive", False, 0.10, _ALVEOLAR, (3000.0, 9000.0), -6.0),
    "k": Consonant("plosive", False, 0.10, _VELAR, (1400.0, 3500.0), -6.0),
    "b": Consonant("plosive", True, 0.07, _LABIAL, (400.0, 3000.0), -18.0, -22.0),
    "d": Consonant("plosive", True, 0.07, _ALVEOLAR, (3000.0, 9000.0), -14.0, -22.0),
    "g": Consonant("plosive", True, 0.07, _VELAR, (1400.0, 3500.0), -14.0, -22.0),
    "s": Consonant("fricative", False, 0.11, _ALVEOLAR, (4500.0, 10000.0), -8.0),
    "z": Consonant("fricative", True, 0.09, _ALVEOLAR, (4500.0, 10000.0), -14.0, -8.0),
    "sh": Consonant("fricative", False, 0.11, (250.0, 1900.0, 2300.0), (2200.0, 6500.0), -8.0),
    "f": Consonant("fricative", False, 0.10, _LABIAL, (1200.0, 9000.0), -16.0),
    "v": Consonant("fricative", True, 0.08, _LABIAL, (1200.0, 9000.0), -20.0, -8.0),
    "h": Consonant("aspirate", False, 0.08, (0.0, 0.0, 0.0), (0.0, 0.0), -8.0),
    "m": Consonant("nasal", True, 0.08, (250.0, 1100.0, 2200.0), voicing_db=-8.0),
    "n": Consonant("nasal", True, 0.07, (250.0, 1500.0, 2500.0), voicing_db=-8.0),
    "l": Consonant("approximant", True, 0.07, (360.0, 1100.0, 2600.0), voicing_db=-4.0),
    "r": Consonant("approximant", True, 0.07, (420.0, 1250.0, 1700.0), voicing_db=-4.0),
    "w": Consonant("approximant", True, 0.07, (300.0, 700.0, 2300.0), voicing_db=-4.0),
    "j": Consonant("approximant", True, 0.06, (280.0, 2100.0, 2900.0), voicing_db=-4.0),
}
# How often each is drawn: onsets of sung English-like syllables lean on sonorants and
# stops; codas are few (singers hold the vowel and move the coda to the next onset).
_ONSET_WEIGHTS = {"": 10, "m": 8, "n": 7, "l": 8, "r": 6, "w": 5, "j": 3, "b": 5, "d": 6, "g": 3, "p": 4,
                  "t": 6, "k": 5, "s": 7, "sh": 3, "f": 4, "v": 2, "z": 2, "h": 5}
_CODA_WEIGHTS = {"": 55, "n": 12, "m": 6, "s": 9, "t": 7, "l": 5, "k": 3, "z": 3}
_VOWEL_WEIGHTS = {"a": 30, "e": 22, "i": 20, "o": 16, "u": 12}
# Nasal murmur: the higher formants weakened (dB), as the nasal tract's zeros do.
_NASAL_LEVELS = np.array([0.0, -18.0, -24.0, -30.0, -36.0])


@dataclass(frozen=True)
class Syllable:
    """A sung syllable: onset consonant ("" for none), vowel, coda consonant ("" for none).

    ``tied`` continues the previous note's vowel (a melisma): no onset, no new vowel.
    """

    onset: str
    vowel: str
    coda: str = ""
    tied: bool = False

    @property
    def text(self) -> str:
        return "-" if self.tied else f"{self.onset}{self.vowel}{self.coda}"


def draw_syllables(rng: np.random.Generator, nb_notes: int, phrase_ends: Sequence[bool]) -> list[Syllable]:
    """One syllable per note: mostly consonant-vowel, some melismas (not on a phrase's first
    note), codas mostly at phrase ends.

    Parameters
    ----------
    rng : numpy.random.Generator
    nb_notes : int
    phrase_ends : sequence of bool, length ``nb_notes``
        Whether each note ends a phrase (a rest or the end follows it).
    """
    onsets, onset_p = zip(*_ONSET_WEIGHTS.items())
    codas, coda_p = zip(*_CODA_WEIGHTS.items())
    vowels, vowel_p = zip(*_VOWEL_WEIGHTS.items())
    onset_p = np.asarray(onset_p, float) / sum(onset_p)
    coda_p = np.asarray(coda_p, float) / sum(coda_p)
    vowel_p = np.asarray(vowel_p, float) / sum(vowel_p)
    out: list[Syllable] = []
    for i in range(nb_notes):
        starts_phrase = i == 0 or phrase_ends[i - 1]
        draws = rng.random(2)
        if not starts_phrase and draws[0] < 0.12:
            out.append(Syllable("", out[-1].vowel, "", tied=True))
            continue
        onset = onsets[rng.choice(len(onsets), p=onset_p)]
        vowel = vowels[rng.choice(len(vowels), p=vowel_p)]
        coda = codas[rng.choice(len(codas), p=coda_p)] if (phrase_ends[i] or draws[1] < 0.2) else ""
        out.append(Syllable(onset, vowel, coda))
    return out


# ----------------------------------------------------------------------------------------
# The singer
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vibrato:
    """Pitch shape of a sung note: cents, seconds, Hz.

    ``depth_cents`` is the amplitude of the sinusoid (peak deviation), at ``rate_hz``; it
    fades in over 0.25 s from ``delay`` seconds after each note's onset. A phrase starts
    ``scoop_cents`` below its first note and approaches it with time constant ``scoop_time``.
    """

    depth_cents: float
    rate_hz: float
    delay: float
    scoop_cents: float
    scoop_time: float


@dataclass(frozen=True)
class Singer:
    """Everything about a voice that stays fixed through a song.

    Attributes
    ----------
    voice_type : str
        One of ``VOICE_TYPES``: the formant table used.
    transpose : int
        Semitones added to every written pitch (whole octaves, :func:`octave_for`).
    formant_scale : float
        Factor on every formant frequency (vocal-tract length; 1 = the table).
    vowel_space : float
        Spread of the vowels around their centre (log frequency; 1 = the table).
    vibrato : Vibrato
    glide_time : float
        Seconds of portamento from one note to the next within a phrase.
    brightness : float
        0 (dark) to 1 (bright): the corner of the source's spectral tilt (1.2 to 6 kHz) and
        the glottal open quotient (0.72 to 0.52).
    breathiness : float
        0 to 1: aspiration noise mixed into the voiced source (-40 to -12 dB).
    jitter_cents, drift_cents : float
        Standard deviations of the fast (about 40 Hz wide) and slow (below 1.5 Hz) random
        pitch perturbations.
    shimmer_db : float
        Standard deviation of the per-cycle amplitude (dB).
    breath_db : float
        Level of the inhalations between phrases, re the vowels (dB).
    seed : int
        Seed of every random draw of the rendering.
    """

    voice_type: str
    transpose: int
    formant_scale: float
    vowel_space: float
    vibrato: Vibrato
    glide_time: float
    brightness: float
    breathiness: float
    jitter_cents: float
    drift_cents: float
    shimmer_db: float
    breath_db: float
    seed: int

    def describe(self) -> dict:
        """The singer as plain values (for a manifest)."""
        return {
            "voice_type": self.voice_type, "transpose": self.transpose,
            "formant_scale": round(self.formant_scale, 4), "vowel_space": round(self.vowel_space, 4),
            "vibrato_rate_hz": round(self.vibrato.rate_hz, 3), "vibrato_depth_cents": round(self.vibrato.depth_cents, 2),
            "glide_time": round(self.glide_time, 4), "brightness": round(self.brightness, 3),
            "breathiness": round(self.breathiness, 3), "jitter_cents": round(self.jitter_cents, 2),
            "shimmer_db": round(self.shimmer_db, 3), "breath_db": round(self.breath_db, 2),
        }


def octave_for(pitches: Sequence[int], voice_type: str) -> int:
    """Semitones (a multiple of 12, -24 to +24) that put the median of ``pitches`` nearest
    the middle of ``voice_type``'s range."""
    low, high = VOICE_RANGES[voice_type]
    median = float(np.median(pitches)) if len(pitches) else 0.5 * (low + high)
    return min((-24, -12, 0, 12, 24), key=lambda shift: (abs(median + shift - 0.5 * (low + high)), abs(shift)))


def draw_singer(rng: np.random.Generator, pitches: Sequence[int], vibrato: Vibrato | None = None,
                voice_type: str | None = None, transpose: int | None = None) -> Singer:
    """A singer at random: voice type, tract, vowel space, vibrato, brightness, breathiness.

    Parameters
    ----------
    rng : numpy.random.Generator
    pitches : sequence of int
        The written MIDI keys the singer will sing (choose the octave).
    vibrato : Vibrato, optional
        Use this vibrato instead of drawing one.
    voice_type : str, optional
        Use this voice type instead of drawing one.
    transpose : int, optional
        Use this transposition instead of :func:`octave_for`.
    """
    if voice_type is None:
        voice_type = VOICE_TYPES[rng.integers(len(VOICE_TYPES))]
    if vibrato is None:
        vibrato = Vibrato(depth_cents=float(rng.uniform(25, 50)), rate_hz=float(rng.uniform(4.8, 6.3)),
                          delay=float(rng.uniform(0.12, 0.3)), scoop_cents=float(rng.uniform(20, 60)),
                          scoop_time=float(rng.uniform(0.025, 0.05)))
    return Singer(
        voice_type=voice_type,
        transpose=octave_for(pitches, voice_type) if transpose is None else int(transpose),
        formant_scale=float(rng.uniform(0.94, 1.06)),
        vowel_space=float(rng.uniform(0.85, 1.15)),
        vibrato=vibrato,
        glide_time=float(rng.uniform(0.04, 0.10)),
        brightness=float(rng.uniform(0.0, 1.0)),
        breathiness=float(rng.uniform(0.0, 1.0)),
        jitter_cents=float(rng.uniform(2.0, 6.0)),
        drift_cents=float(rng.uniform(3.0, 10.0)),
        shimmer_db=float(rng.uniform(0.2, 0.8)),
        breath_db=float(rng.uniform(-34.0, -22.0)),
        seed=int(rng.integers(2**63)),
    )


@functools.lru_cache(maxsize=64)
def _singer_vowels(voice_type: str, formant_scale: float, vowel_space: float) -> dict[str, np.ndarray]:
    """Vowel -> (3, 5) array of formant frequencies, levels (dB), bandwidths for one singer."""
    table = {v: vowel_formants(voice_type, v) for v in VOWELS}
    log_centre = np.mean([np.log(table[v][0]) for v in VOWELS], axis=0)
    out = {}
    for vowel, (freqs, levels, bandwidths) in table.items():
        moved = np.exp(log_centre + vowel_space * (np.log(freqs) - log_centre)) * formant_scale
        out[vowel] = np.stack([moved, levels, np.maximum(bandwidths, MIN_BANDWIDTH)])
    return out


def singer_formants(singer: Singer, vowel: str) -> np.ndarray:
    """(3, 5) array: the singer's formant frequencies (Hz), levels (dB) and bandwidths (Hz)
    for ``vowel`` (the table's, moved by ``vowel_space`` and ``formant_scale``)."""
    return _singer_vowels(singer.voice_type, singer.formant_scale, singer.vowel_space)[vowel]


# ----------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------

#: Gap (seconds) between two notes above which they belong to different phrases.
PHRASE_GAP = 0.05
_RELEASE = 0.12  # seconds of decay after a phrase's last note
_ATTACK = 0.03  # seconds of rise of the first voiced sound of a phrase
_TRANSITION = 0.05  # seconds from a consonant's locus to the vowel's formants
_BREATH = (0.22, 0.4)  # shortest and longest inhalation (seconds)
_FRAME_SECONDS = 0.046  # STFT frame of the vocal-tract filter (2048 samples at 44.1 kHz)
_CONTROL = 32  # samples between two control points of pitch
_PULSE_POINTS = 4096  # values of the glottal pulse table over one cycle
_SOURCE_SCALE = 0.1  # a sustained vowel at velocity 100 has an RMS near 0.1


def phrases(notes: Sequence) -> list[list[int]]:
    """Indices of ``notes`` (sorted, non-overlapping) grouped into phrases: runs of notes
    each starting less than ``PHRASE_GAP`` seconds after the previous one ends."""
    groups: list[list[int]] = []
    for i, note in enumerate(notes):
        if groups and note.start - notes[groups[-1][-1]].end < PHRASE_GAP:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def render_voice(notes: Sequence, syllables: Sequence[Syllable], singer: Singer, nb_samples: int,
                 sample_rate: int) -> np.ndarray:
    """Sing ``notes`` on ``syllables``.

    Parameters
    ----------
    notes : sequence of objects with ``start``, ``end`` (seconds), ``pitch`` (MIDI key) and
        ``velocity`` (1-127), sorted and not overlapping (one voice).
    syllables : sequence of Syllable
        One per note.
    singer : Singer
    nb_samples : int
        Length of the output.
    sample_rate : int
        Hz.

    Returns
    -------
    ndarray, float64, shape (nb_samples,)
        The dry voice, mono; a sustained vowel at velocity 100 peaks near 0.3. Exactly zero
        before each phrase's breath and from ``_RELEASE`` seconds after its last note.
    """
    out = np.zeros(nb_samples)
    for start, phrase in sing(notes, syllables, singer, nb_samples, sample_rate):
        out[start:start + len(phrase)] += phrase
    return out


def sing(notes: Sequence, syllables: Sequence[Syllable], singer: Singer, nb_samples: int, sample_rate: int):
    """:func:`render_voice` phrase by phrase: yields ``(first sample, phrase)`` pairs, each
    phrase a float64 array that fits in ``nb_samples``; the voice is zero elsewhere.
    Phrases may overlap by a few milliseconds (a release and the next breath)."""
    if len(syllables) != len(notes):
        raise ValueError(f"one syllable per note: {len(notes)} notes, {len(syllables)} syllables")
    previous_end = -math.inf
    for index, group in enumerate(phrases(notes)):
        phrase_notes = [notes[i] for i in group]
        phrase_syllables = [syllables[i] for i in group]
        rest = phrase_notes[0].start - previous_end
        previous_end = phrase_notes[-1].end
        rendered = _render_phrase(phrase_notes, phrase_syllables, singer, nb_samples, sample_rate, rest, index)
        if rendered is not None:
            yield rendered


def _db(level_db):
    return 10.0 ** (np.asarray(level_db, dtype=float) / 20.0)


class _Track:
    """A piecewise-linear control signal: (time, value) breakpoints, times non-decreasing."""

    def __init__(self, nb_values: int = 1):
        self.times: list[float] = []
        self.values: list = []
        self.nb_values = nb_values

    def add(self, time: float, value) -> None:
        if self.times and time < self.times[-1]:
            time = self.times[-1]
        self.times.append(float(time))
        self.values.append(value)

    def at(self, times: np.ndarray) -> np.ndarray:
        if not self.times:
            return np.zeros(times.shape if self.nb_values == 1 else times.shape + (self.nb_values,))
        xp = np.asarray(self.times)
        fp = np.asarray(self.values, dtype=float)
        if self.nb_values == 1:
            return np.interp(times, xp, fp)
        return np.stack([np.interp(times, xp, fp[:, k]) for k in range(self.nb_values)], axis=-1)


def _consonant_formants(consonant: Consonant, vowel: np.ndarray, scale: float) -> np.ndarray:
    """Formants (3, 5) at a consonant: its loci for F1-F3 (scaled to the singer's tract),
    the vowel's F4-F5; nasals with weak upper formants."""
    if consonant.kind == "aspirate":
        return vowel.copy()
    out = vowel.copy()
    out[0, :3] = np.asarray(consonant.loci) * scale
    if consonant.kind == "nasal":
        out[1] = _NASAL_LEVELS
    elif consonant.kind == "fricative":
        out[0, :3] = 0.5 * (out[0, :3] + vowel[0, :3])  # the tongue already on its way
    return out


def _render_phrase(notes, syllables, singer: Singer, nb_samples: int, sample_rate: int, rest: float,
                   index: int) -> tuple[int, np.ndarray] | None:
    """One phrase, with the breath before it when ``rest`` (seconds since the previous
    phrase) allows: its first sample and its samples, or None when nothing fits."""
    rng = np.random.default_rng([singer.seed, index])
    first, last = notes[0], notes[-1]
    breath = 0.0
    if rest > _BREATH[0] + 0.1:
        breath = min(_BREATH[1], rest - 0.1)
    t0 = max(0.0, first.start - breath - 0.01)
    t1 = min(nb_samples / sample_rate, last.end + _RELEASE)
    i0, i1 = int(round(t0 * sample_rate)), int(round(t1 * sample_rate))
    if i1 - i0 < 16:
        return None
    n = i1 - i0
    times = (i0 + np.arange(n)) / sample_rate

    controls = _phrase_controls(notes, syllables, singer, rng, breath)
    excitation = _glottal_excitation(controls, notes, singer, rng, i0, n, sample_rate)

    # --- filter: the vocal tract as a time-varying spectral envelope ---------------------
    voice = _apply_tract(excitation, controls.tract, times[0], sample_rate)
    for start, length, consonant, level in controls.noises:
        _add_noise(voice, rng, start - times[0], length, consonant, level, sample_rate)
    return i0, voice


@dataclass
class _PhraseControls:
    """A phrase's control tracks, in seconds: what the source and the tract follow."""

    voicing: _Track  # linear amplitude of the glottal source
    aspiration: _Track  # linear amplitude of noise through the tract (h, plosive release, breath)
    tract: _Track  # formant frequencies, levels (dB), bandwidths
    pitch: _Track  # MIDI pitch (glides)
    noises: list[tuple[float, float, Consonant, float]]  # (start, length, consonant, level)


def _phrase_controls(notes, syllables, singer: Singer, rng: np.random.Generator, breath: float) -> _PhraseControls:
    """The breath before the phrase, then per syllable: the pitch (scoop or glide), the
    voicing and aspiration around its consonants, the formants from consonant loci into
    the vowel and out, and the consonants' noise bursts."""
    scale = singer.formant_scale * tract_scale(singer.voice_type)
    first, last = notes[0], notes[-1]
    controls = _PhraseControls(voicing=_Track(), aspiration=_Track(), tract=_Track(15), pitch=_Track(), noises=[])
    vowel_sets = [singer_formants(singer, s.vowel) for s in syllables]
    if breath > 0:
        _add_breath(controls, singer, first.start, breath)

    written = [n_.pitch + singer.transpose + float(rng.normal(0.0, 0.04)) for n_ in notes]
    for k, (note, syllable) in enumerate(zip(notes, syllables)):
        s, e = note.start, note.end
        length = e - s
        level = float(_db((note.velocity - 100) * 0.12))
        vowel = vowel_sets[k]
        _add_pitch(controls.pitch, singer, written, k, s, e)

        onset = CONSONANTS.get(syllable.onset) if not syllable.tied else None
        coda = CONSONANTS.get(syllable.coda) if syllable.coda else None
        c_len = min(onset.duration, 0.35 * length) if onset else 0.0
        coda_len = min(coda.duration, 0.25 * length) if coda else 0.0
        vowel_on = s + c_len
        vowel_off = e - coda_len
        if onset is None:
            if k == 0:
                controls.voicing.add(s, 0.0)
                controls.voicing.add(s + _ATTACK, level)
            else:
                controls.voicing.add(s, level)
            controls.tract.add(s, vowel.ravel())
        else:
            _add_onset(controls, onset, _consonant_formants(onset, vowel, scale), first_note=k == 0, start=s,
                       c_len=c_len, vowel_on=vowel_on, level=level, vowel=vowel)
            controls.tract.add(vowel_on + min(_TRANSITION, 0.3 * length), vowel.ravel())
        controls.tract.add(vowel_off - min(0.03, 0.1 * length), vowel.ravel())
        controls.voicing.add(vowel_off, level)
        if coda is not None:
            _add_coda(controls, coda, _consonant_formants(coda, vowel, scale), end=e, vowel_off=vowel_off,
                      coda_len=coda_len, level=level)
    # the release after the last note
    controls.voicing.add(last.end + _RELEASE, 0.0)
    return controls


def _add_breath(controls: _PhraseControls, singer: Singer, start: float, breath: float) -> None:
    """The audible breath before a phrase: aspiration through an open, damped tract."""
    breath_set = singer_formants(singer, "a").copy()
    breath_set[2] *= 3.0  # an open, damped tract
    b0 = start - breath - 0.01
    controls.aspiration.add(b0, 0.0)
    controls.aspiration.add(b0 + 0.4 * breath, _db(singer.breath_db))
    controls.aspiration.add(start - 0.03, 0.0)
    controls.tract.add(b0, breath_set.ravel())
    controls.tract.add(start - 0.03, breath_set.ravel())


def _add_pitch(pitch: _Track, singer: Singer, written: list[float], k: int, start: float, end: float) -> None:
    """A note's pitch: a scoop into the phrase's first note, else a glide from the previous one."""
    if k == 0:
        pitch.add(start, written[k] - singer.vibrato.scoop_cents / 100.0)
        for frac in (0.5, 1.0, 2.0, 4.0):
            tau = singer.vibrato.scoop_time * frac
            pitch.add(start + tau, written[k] - singer.vibrato.scoop_cents / 100.0 * math.exp(-frac))
    else:
        glide = min(singer.glide_time, 0.4 * (end - start))
        pitch.add(start, written[k - 1])
        pitch.add(start + 0.5 * glide, 0.5 * (written[k - 1] + written[k]))
        pitch.add(start + glide, written[k])
    pitch.add(end, written[k])


def _add_onset(controls: _PhraseControls, onset: Consonant, locus: np.ndarray, first_note: bool, start: float,
               c_len: float, vowel_on: float, level: float, vowel: np.ndarray) -> None:
    """A syllable's opening consonant: the formants from its locus, the voicing, aspiration
    and noise its kind makes (plosive, fricative or aspirate, nasal or approximant)."""
    voicing, aspiration, tract, noises = controls.voicing, controls.aspiration, controls.tract, controls.noises
    s = start
    tract.add(s, locus.ravel())
    if onset.kind == "plosive":
        release = s + 0.6 * c_len
        tract.add(release, locus.ravel())
        voicing.add(s, 0.0 if not onset.voiced or first_note else level * float(_db(onset.voicing_db)))
        voicing.add(release, level * float(_db(onset.voicing_db)) if onset.voiced else 0.0)
        noises.append((release, min(0.012, 0.3 * c_len), onset, level * float(_db(onset.noise_db))))
        if not onset.voiced:
            aspiration.add(release, 0.0)
            aspiration.add(release + 0.005, level * float(_db(onset.noise_db - 6)))
            aspiration.add(vowel_on, 0.0)
            voicing.add(vowel_on, 0.0)
        voicing.add(vowel_on + 0.015, level)
    elif onset.kind in ("fricative", "aspirate"):
        if onset.voiced:
            voicing.add(s, level * float(_db(onset.voicing_db)))
            voicing.add(vowel_on, level * float(_db(onset.voicing_db)))
        else:
            voicing.add(s, 0.0)
            voicing.add(vowel_on, 0.0)
        voicing.add(vowel_on + 0.02, level)
        if onset.kind == "aspirate":
            tract.add(s, vowel.ravel())
            aspiration.add(s, 0.0)
            aspiration.add(s + 0.3 * c_len, level * float(_db(onset.noise_db)))
            aspiration.add(vowel_on, level * float(_db(onset.noise_db)))
            aspiration.add(vowel_on + 0.02, 0.0)
        else:
            noises.append((s, c_len, onset, level * float(_db(onset.noise_db))))
    else:  # nasal, approximant: voiced throughout, formants move into the vowel
        murmur = level * float(_db(onset.voicing_db))
        if first_note:
            voicing.add(s, 0.0)
            voicing.add(s + min(_ATTACK, 0.5 * c_len), murmur)
        else:
            voicing.add(s, murmur)
        voicing.add(s + 0.7 * c_len, murmur)
        tract.add(s + 0.6 * c_len, locus.ravel())
        voicing.add(vowel_on + 0.01, level)


def _add_coda(controls: _PhraseControls, coda: Consonant, coda_set: np.ndarray, end: float, vowel_off: float,
              coda_len: float, level: float) -> None:
    """A syllable's closing consonant: the formants into it, its voicing and noise."""
    voicing, tract, noises = controls.voicing, controls.tract, controls.noises
    e = end
    tract.add(vowel_off + 0.4 * coda_len, coda_set.ravel())
    if coda.kind in ("nasal", "approximant"):
        voicing.add(vowel_off + 0.5 * coda_len, level * float(_db(coda.voicing_db)))
        voicing.add(e, level * float(_db(coda.voicing_db)))
    elif coda.kind == "plosive":
        voicing.add(vowel_off + 0.4 * coda_len, level * float(_db(coda.voicing_db)) if coda.voiced else 0.0)
        voicing.add(e - 0.01, level * float(_db(coda.voicing_db)) if coda.voiced else 0.0)
        noises.append((e - 0.3 * coda_len, min(0.012, 0.3 * coda_len), coda, level * float(_db(coda.noise_db))))
    else:  # fricative (h never ends a syllable)
        voicing.add(vowel_off + 0.4 * coda_len, level * float(_db(coda.voicing_db)) if coda.voiced else 0.0)
        voicing.add(e, level * float(_db(coda.voicing_db)) if coda.voiced else 0.0)
        noises.append((vowel_off + 0.2 * coda_len, 0.8 * coda_len, coda, level * float(_db(coda.noise_db))))
    tract.add(e, coda_set.ravel())


def _glottal_excitation(controls: _PhraseControls, notes, singer: Singer, rng: np.random.Generator, i0: int,
                        n: int, sample_rate: int) -> np.ndarray:
    """The source: pitch (with vibrato, drift and jitter) integrated to a phase, the glottal
    pulse with band-limited closures and shimmer, breathiness and aspiration noise, and the
    return-phase low-pass; ``n`` samples from sample ``i0``."""
    voicing, aspiration, pitch = controls.voicing, controls.aspiration, controls.pitch
    times = (i0 + np.arange(n)) / sample_rate
    # --- source: pitch -> phase -> glottal flow derivative ---------------------------------
    # Pitch and amplitudes at a control rate (every _CONTROL samples), the phase integrated
    # there and interpolated to every sample.
    control = (i0 + np.arange(0, n + _CONTROL, _CONTROL)) / sample_rate
    semitones = pitch.at(control)
    semitones += _vibrato_cents(control, notes, singer, rng) / 100.0
    semitones += _random_cents(rng, control, singer.drift_cents, 1.5) / 100.0
    semitones += _random_cents(rng, control, singer.jitter_cents, 40.0) / 100.0
    cycles_per_step = np.minimum(440.0 * 2.0 ** ((semitones - 69.0) / 12.0), 0.45 * sample_rate) * (
        _CONTROL / sample_rate)
    control_phase = np.concatenate([[0.0], np.cumsum(0.5 * (cycles_per_step[1:] + cycles_per_step[:-1]))])
    control_phase += rng.random()
    phase = np.interp(np.arange(n, dtype=np.float64), np.arange(len(control)) * float(_CONTROL), control_phase)
    floor = np.floor(phase)
    theta = phase - floor
    table_index = (theta * _PULSE_POINTS).astype(np.intp)
    pulse, gate = _pulse_tables(singer.brightness, singer.breathiness)
    source = pulse[table_index]
    _blep_closures(source, phase, _open_quotient(singer))
    cycles = floor.astype(np.intp)
    cycles -= cycles[0]
    source *= _db(singer.shimmer_db * rng.standard_normal(int(cycles[-1]) + 1))[cycles]
    breathy = float(_db(-40.0 + 28.0 * singer.breathiness))
    amplitude = voicing.at(times)
    # one noise for the breathiness (gated by the glottal cycle) and the aspiration
    noise_gain = amplitude * breathy * gate[table_index] + aspiration.at(times)
    excitation = amplitude * source + noise_gain * rng.standard_normal(n)
    # LF return phase: a one-pole low-pass whose corner is the singer's brightness
    corner = min(1200.0 * 5.0**singer.brightness, 0.4 * sample_rate)
    pole = math.exp(-2.0 * math.pi * corner / sample_rate)
    excitation = scipy.signal.lfilter([1.0 - pole], [1.0, -pole], excitation)
    return excitation


def _open_quotient(singer: Singer) -> float:
    return _open_quotient_of(singer.brightness, singer.breathiness)


def _open_quotient_of(brightness: float, breathiness: float) -> float:
    return 0.72 - 0.2 * brightness + 0.08 * breathiness


@functools.lru_cache(maxsize=64)
def _pulse_tables(brightness: float, breathiness: float) -> tuple[np.ndarray, np.ndarray]:
    """One cycle of Rosenberg's flow derivative (``_PULSE_POINTS`` values over the cycle) and
    the gate of the breath noise (1 while the glottis is open, 0.25 while it is closed)."""
    open_q = _open_quotient_of(brightness, breathiness)
    peak = 0.7 * open_q  # instant of maximum flow, fraction of the cycle
    theta = np.arange(_PULSE_POINTS) / _PULSE_POINTS
    rising = (0.5 * math.pi / peak) * np.sin(np.pi * np.minimum(theta, peak) / peak)
    fall = np.clip((theta - peak) / (open_q - peak), 0.0, 1.0)
    closing = -(0.5 * math.pi / (open_q - peak)) * np.sin(0.5 * np.pi * fall)
    pulse = np.where(theta < peak, rising, np.where(theta < open_q, closing, 0.0)) * _SOURCE_SCALE
    gate = np.where(theta < open_q, 1.0, 0.25)
    return pulse, gate


def _blep_closures(source: np.ndarray, phase: np.ndarray, open_q: float) -> None:
    """Band-limit the step of the flow derivative at each glottal closure (a polynomial BLEP
    on the two samples around it), in place; ``phase`` in cycles, per sample."""
    jump = 0.5 * math.pi / (open_q - 0.7 * open_q) * _SOURCE_SCALE  # from -jump up to 0
    first = math.ceil(phase[0] - open_q)
    closures = np.arange(first, math.floor(phase[-1] - open_q) + 1) + open_q  # phases of the closures
    after = np.searchsorted(phase, closures)  # first sample at or past each closure
    ok = (after > 0) & (after < len(phase))
    after = after[ok]
    closures = closures[ok]
    dt = phase[after] - phase[after - 1]
    x = (phase[after] - closures) / dt  # fraction of a sample past the closure, in (0, 1]
    source[after] += 0.5 * jump * (2.0 * x - x * x - 1.0)
    y = x - 1.0
    source[after - 1] += 0.5 * jump * (y * y + 2.0 * y + 1.0)


def _vibrato_cents(times: np.ndarray, notes, singer: Singer, rng: np.random.Generator) -> np.ndarray:
    """Vibrato (cents) over a phrase: one oscillator with a slowly wandering rate, its depth
    fading in after each note's onset and out just before the next."""
    vib = singer.vibrato
    depth = _Track()
    for k, note in enumerate(notes):
        depth.add(note.start, 0.0)
        depth.add(note.start + vib.delay, 0.0)
        depth.add(note.start + vib.delay + 0.25, vib.depth_cents)
        depth.add(max(note.start + vib.delay + 0.25, note.end - 0.03), vib.depth_cents)
        depth.add(note.end, 0.0)
    rate = vib.rate_hz * (1.0 + 0.04 * np.interp(times, times[[0, -1]], rng.uniform(-1.0, 1.0, 2)))
    step = times[1] - times[0] if len(times) > 1 else 0.0
    phase = 2.0 * np.pi * step * np.cumsum(rate) + rng.uniform(0.0, 2.0 * np.pi)
    return depth.at(times) * np.sin(phase)


def _random_cents(rng: np.random.Generator, times: np.ndarray, std: float, bandwidth: float) -> np.ndarray:
    """Random pitch perturbation (cents): Gaussian values every 1/(2 * bandwidth) seconds,
    interpolated linearly, with standard deviation ``std``."""
    step = 0.5 / bandwidth
    nb_points = int(math.ceil((times[-1] - times[0]) / step)) + 2
    values = rng.standard_normal(nb_points) * std
    return np.interp(times - times[0], np.arange(nb_points) * step, values)


def _frame_length(sample_rate: int) -> int:
    return 1 << int(round(math.log2(_FRAME_SECONDS * sample_rate)))


@functools.lru_cache(maxsize=8)
def _window(nb_fft: int) -> np.ndarray:
    return scipy.signal.get_window("hann", nb_fft).astype(np.float32)


def tract_envelope(freqs: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """Magnitude response of the vocal tract: the sum of the formants' resonances.

    Parameters
    ----------
    freqs : ndarray, shape (nb_bins,)
        Hz, increasing.
    formants : ndarray, shape (nb_frames, 15)
        Per frame: five frequencies (Hz), five levels (dB re 1), five bandwidths (Hz).

    Returns
    -------
    ndarray, float32, shape (nb_frames, nb_bins)
        ``sum_k 10**(L_k/20) * F_k B_k / sqrt((F_k^2 - f^2)^2 + (f B_k)^2)``: each term is a
        second-order resonance at ``F_k`` with -3 dB bandwidth ``B_k``, 1 at its peak. Above
        twice the highest formant, where every term falls as ``1/f^2``, the sum is continued
        as ``E(f_c) (f_c / f)^2`` from that frequency ``f_c`` (within 2.5 dB of the sum there,
        at a fifth of the cost).
    """
    cut = int(np.searchsorted(freqs, 2.0 * float(formants[:, 4].max())))
    cut = min(max(cut, 1), len(freqs) - 1)
    low = freqs[:cut + 1].astype(np.float32)
    f2 = (low * low)[None, :]
    out = np.empty((formants.shape[0], len(freqs)), dtype=np.float32)
    exact = out[:, :cut + 1]
    exact[:] = 0.0
    for k in range(5):
        freq = formants[:, k, None].astype(np.float32)
        gain = (10.0 ** (formants[:, 5 + k] / 20.0)).astype(np.float32)[:, None]
        bandwidth = formants[:, 10 + k, None].astype(np.float32)
        exact += (gain * freq * bandwidth) / np.sqrt((freq * freq - f2) ** 2 + f2 * (bandwidth * bandwidth))
    tail = (freqs[cut] / np.maximum(freqs[cut + 1:], 1e-9)) ** 2
    out[:, cut + 1:] = exact[:, cut, None] * tail.astype(np.float32)[None, :]
    return out


def _apply_tract(excitation: np.ndarray, tract: _Track, t0: float, sample_rate: int) -> np.ndarray:
    """Filter ``excitation`` (one phrase) by the tract envelope of each STFT frame (Hann
    analysis and synthesis windows, hop a quarter frame, overlap-added)."""
    nb_fft = _frame_length(sample_rate)
    hop = nb_fft // 4
    n = len(excitation)
    nb_frames = (n + nb_fft) // hop + 1
    padded = np.zeros((nb_frames - 1) * hop + nb_fft, dtype=np.float32)
    padded[nb_fft // 2: nb_fft // 2 + n] = excitation
    frames = np.lib.stride_tricks.sliding_window_view(padded, nb_fft)[::hop]
    window = _window(nb_fft)
    spectra = scipy.fft.rfft(frames * window, axis=1)
    centres = t0 + (np.arange(nb_frames) * hop - nb_fft // 2 + nb_fft // 2) / sample_rate
    formants = tract.at(centres)
    formants[:, :5] = np.minimum(formants[:, :5], 0.48 * sample_rate)
    freqs = np.fft.rfftfreq(nb_fft, 1.0 / sample_rate)
    spectra *= tract_envelope(freqs, formants)
    frames_out = scipy.fft.irfft(spectra, n=nb_fft, axis=1) * window
    # overlap-add: every fourth frame tiles the signal without overlap
    out = np.zeros(len(padded) + nb_fft, dtype=np.float64)
    for r in range(4):
        chunk = frames_out[r::4]
        start = r * hop
        out[start:start + chunk.size] += chunk.reshape(-1)
    norm = float(np.sum(window.astype(np.float64) ** 2)) / hop  # 1.5 for the periodic Hann
    return out[nb_fft // 2: nb_fft // 2 + n] / norm


@functools.lru_cache(maxsize=64)
def _noise_filter(band: tuple[float, float], sample_rate: int) -> np.ndarray:
    low = min(band[0], 0.35 * sample_rate)
    high = min(band[1], 0.45 * sample_rate)
    return scipy.signal.butter(2, (low, max(high, low * 1.2)), btype="bandpass", fs=sample_rate, output="sos")


def _add_noise(out: np.ndarray, rng: np.random.Generator, start: float, length: float, consonant: Consonant,
               level: float, sample_rate: int) -> None:
    """Add a band-passed noise (a burst when ``consonant`` is a plosive, else a fricative with
    25 ms rise and fall) of ``length`` seconds at ``start`` (seconds into ``out``)."""
    i0 = max(0, int(round(start * sample_rate)))
    nb = int(round(length * sample_rate))
    if consonant.kind == "plosive":
        nb = int(round(0.03 * sample_rate))  # the burst's decay runs on past its nominal length
    i1 = min(len(out), i0 + nb)
    if i1 - i0 < 4:
        return
    nb = i1 - i0
    lead = int(0.01 * sample_rate)
    noise = scipy.signal.sosfilt(_noise_filter(consonant.noise_band, sample_rate), rng.standard_normal(nb + lead))[lead:]
    t = np.arange(nb) / sample_rate
    if consonant.kind == "plosive":
        envelope = np.exp(-t / max(length, 1e-3) * 2.0) * np.minimum(1.0, t / 0.001)
    else:
        ramp = min(0.025, 0.4 * length)
        envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / ramp)
        envelope = np.sin(0.5 * np.pi * np.clip(envelope, 0.0, 1.0)) ** 2
    # band-passed unit noise has the band's share of the power; scale back to unit RMS
    out[i0:i1] += level * 0.19 * noise * envelope
