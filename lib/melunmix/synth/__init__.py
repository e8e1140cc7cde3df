"""The built-in MUSDB18-format dataset: generated songs, a synthesised singer over a General MIDI band.

Every song is arranged at random (tempo, key, chord progression, song form, instruments,
panning, levels). Drums, bass and other are rendered stem by stem with
`tinysoundfont <https://github.com/nwhitehead/tinysoundfont-pybind>`_ from the
``TimGM6mb.sf2`` soundfont that ships inside ``pretty_midi`` -- the approach of Slakh2100
(Manilow et al., "Cutting Music Source Separation Some Slakh", WASPAA 2019). The vocals
are sung by a source-filter singing voice (:mod:`melunmix.synth.voice`): syllables with moving
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

Three modules, one job each: :mod:`~melunmix.synth.arrangement` draws a song (notes,
singers, levels, rooms), :mod:`~melunmix.synth.rendering` renders it to stems and a mixture,
:mod:`~melunmix.synth.dataset` writes the dataset folder. This package knows nothing of
where datasets live (see :mod:`melunmix.datasets`).
"""

from __future__ import annotations

from .arrangement import (
    MAX_DURATION, MIN_DURATION, Note, Part, Reverb, Song, SongSection, arrange_song, song_name,
)
from .dataset import GENERATOR_VERSION, SOFTWARE_PACKAGES, TRACK_FILES, make_dataset
from .rendering import (
    PEAK_LIMIT, REVERB_TAIL, SOUNDFONT_FILE, add_reverb, pan_gains, render_song, render_stem, render_vocals,
    reverb_impulse_response, soundfont_path,
)

__all__ = [
    "GENERATOR_VERSION", "MAX_DURATION", "MIN_DURATION", "PEAK_LIMIT", "REVERB_TAIL", "SOFTWARE_PACKAGES",
    "SOUNDFONT_FILE", "TRACK_FILES", "Note", "Part", "Reverb", "Song", "SongSection",
    "add_reverb", "arrange_song", "make_dataset", "pan_gains", "render_song", "render_stem", "render_vocals",
    "reverb_impulse_response", "song_name", "soundfont_path",
]
