"""The dataset on disk: generated songs written as a MUSDB18-HQ-format folder.

:func:`make_dataset` arranges (:mod:`~melunmix.synth.arrangement`) and renders
(:mod:`~melunmix.synth.rendering`) each song, writes its folder atomically, and writes the
musdb setup file, the manifest (``dataset.json``, last: its presence marks a complete
dataset) and the data card (``README.md``). A killed run resumes with the missing tracks only.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scipy.io.wavfile
import yaml

from ..base.dataset_format import GENERATED_FORMAT, GENERATOR_VERSION
from ..base.files import sha256_file, write_text
from ..base.names import SOURCES, STEMS
from ..base.provenance import package_versions
from .arrangement import (
    BACKING_GAIN_DB, BACKING_PROBABILITY, DAMPING_RANGE_HZ, HARMONIES, PREDELAY_RANGE, RT60_RANGE,
    KEY_NAMES, SPLIT_CODES, WET_RANGE_DB, MAX_DURATION, MIN_DURATION, Song, arrange_song,
)
from .rendering import PEAK_LIMIT, REVERB_TAIL, SOUNDFONT_FILE, name_parts, render_song, soundfont_path

#: Every file of a track folder.
TRACK_FILES = tuple(f"{name}.wav" for name in STEMS)
#: Libraries whose versions the dataset card records (the generator's output depends on them).
SOFTWARE_PACKAGES = ("tinysoundfont", "pretty_midi", "numpy", "scipy")
_MARKER = "dataset.json"
# The parameters, written before the first track and kept: a run whose dataset.json is
# missing (killed, or the file deleted) resumes only with the same parameters.
_PARAMETERS = ".make_dataset.json"
_PARTIAL_DIR = ".partial"


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
            f"the validation songs (nb_valid, --valid: {nb_valid}) must be fewer than the training songs "
            f"(nb_train, --train: {nb_train}): the validation songs are taken "
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
        raise NotADirectoryError(f"the output folder {out_dir} (--out, out_dir) is a file; {fix}")
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
    for name in STEMS:
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
        "sources": {name: f"{name}.wav" for name in SOURCES},
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
        name_parts(song)
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
            "key": f"{KEY_NAMES[song.key]} {song.mode}",
            "sections": [{"name": s.name, "start": s.start, "end": s.end, "vocals": s.sung} for s in song.sections],
            "instruments": {stem: [p.name for p in song.parts[stem]] for stem in SOURCES},
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
        "sources": list(SOURCES),
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
    """The dataset's README.md: what it holds, how it was made, the voice, the songs, licences."""
    versions = manifest["software"]
    return "".join([
        _card_contents(params, plan),
        _card_making(params, manifest, versions),
        _CARD_VOICE,
        _card_songs(plan, songs),
        _card_licences(versions),
    ])


def _card_contents(params: dict, plan) -> str:
    counts = {split: sum(t.split == split for t in plan) for split in SPLIT_CODES}
    total_minutes = len(plan) * params["duration"] / 60
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

"""


def _card_making(params: dict, manifest: dict, versions: dict) -> str:
    return f"""## How it was made
Each song draws from its own random generator, seeded by (seed={params['seed']}, split, index):
tempo (84-140 BPM), key and mode, a chord progression per section kind, a song form
(intro, verse, chorus, bridge, break, outro), instruments, panning and levels, and a
singer. Drums, bass and other are rendered stem by stem with tinysoundfont
{versions['tinysoundfont']} from the General MIDI soundfont `{SOUNDFONT_FILE}` (sha256
`{manifest['soundfont']['sha256'][:16]}...`); the vocals are sung (see "The voice" below):
- **vocals**: a monophonic melody in the song's scale, in phrases with rests, sung on
  syllables by the song's singer; in {BACKING_PROBABILITY:.0%} of the songs a second singer
  adds a harmony ({', '.join(HARMONIES.values())}, in the song's scale) in the choruses,
  {-BACKING_GAIN_DB[1]:g}-{-BACKING_GAIN_DB[0]:g} dB below the lead and panned apart;
  a presence boost near 3 kHz; silent (exact zeros) in the intro, breaks and outro, except
  for the reverb tail of the section before (at most {REVERB_TAIL:g} s, see below).
- **drums**: a kit (bank 128) playing grooves, fills at section ends, crashes on downbeats.
- **bass**: a GM bass on the chord roots (held, eighths, root-fifth or syncopated).
- **other**: chords as pads, block chords, strummed guitar or arpeggios; a second layer
  in choruses; often an instrumental lead (guitar, sax, flute, synth...) where no one sings.
- **reverb**: every stem, after panning, gets its own small room, fed the mean of the
  stem's two channels (as in most studio reverbs): an impulse response of
  Gaussian noise drawn independently for the left and the right channel, low-passed
  ({DAMPING_RANGE_HZ[0] / 1000:g}-{DAMPING_RANGE_HZ[1] / 1000:g} kHz per song), decaying by 60 dB over RT60
  ({RT60_RANGE[0]:g}-{RT60_RANGE[1]:g} s per song, within +-10 % per stem) and cut there, after a
  {PREDELAY_RANGE[0] * 1000:g}-{PREDELAY_RANGE[1] * 1000:g} ms pre-delay, at {WET_RANGE_DB[0]:g} to
  {WET_RANGE_DB[1]:g} dB relative to the dry sound (per stem; values in `dataset.json`). A stem is
  exactly silent from {REVERB_TAIL:g} s after its last sound at the latest. Without it each
  stem's channels would be one signal panned (linearly dependent), which makes BSS Eval
  v4's split into SIR and ISR numerically unstable (swings of up to 20 dB when the
  references are rounded to 16 bit); with it the split is stable.

"""


#: The card's section on the singing synthesis (no parameters: the same for every dataset).
_CARD_VOICE = """## The voice
A source-filter singing synthesis written for this generator with numpy and scipy
(`melunmix.synth.voice`), not a text-to-speech engine: sustained, pitched vowels on the notes,
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

"""


def _card_songs(plan, songs) -> str:
    rows = "\n".join(
        f"| {s.name} | {t.subset} | {t.split} | {s.bpm:.0f} | {KEY_NAMES[s.key]} {s.mode} | "
        f"{' '.join(x.name for x in s.sections)} | {_voice_summary(s)} | {', '.join(p.name for p in s.parts['other'])} |"
        for t, s in zip(plan, songs)
    )
    return f"""## Songs
| name | subset | split | BPM | key | form | voice | other |
|---|---|---|---|---|---|---|---|
{rows}

"""


def _card_licences(versions: dict) -> str:
    return f"""## Soundfont and licences
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
