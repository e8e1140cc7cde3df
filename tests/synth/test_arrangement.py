"""melunmix.synth.arrangement: songs drawn from their seed (the vocal line, the form)."""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest

from melunmix import synth

from synth_support import DURATION, KEYS, PARAMS, SCALES, SR, read_stem


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

    vocals = read_stem(dataset / entry["subset"] / entry["name"])["vocals"].mean(axis=1)
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


