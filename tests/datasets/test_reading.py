"""melunmix.datasets.reading: chunk reads against soundfile."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from melunmix.datasets import read_chunk

from datasets_support import RATE


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_read_chunk_matches_soundfile(tmp_path, subtype):
    audio = np.random.default_rng(3).uniform(-0.9, 0.9, (1000, 2)).astype(np.float32)
    path = tmp_path / "x.wav"
    sf.write(path, audio, RATE, subtype=subtype)
    reference, _ = sf.read(path, dtype="float32", always_2d=True)  # libsndfile's own scaling
    chunk = read_chunk(path, 123, 456)
    assert chunk.shape == (2, 456) and chunk.dtype == np.float32 and chunk.flags.c_contiguous
    np.testing.assert_array_equal(chunk, reference[123:579].T)
    padded = read_chunk(path, 900, 200, pad=True)
    np.testing.assert_array_equal(padded[:, :100], reference[900:].T)
    assert not padded[:, 100:].any()
    with pytest.raises(ValueError, match=r"cannot read samples \[900, 1100\) from .*x.wav: it has 1000;"):
        read_chunk(path, 900, 200)
    with pytest.raises(ValueError, match="start must be >= 0"):
        read_chunk(path, -1, 10)
