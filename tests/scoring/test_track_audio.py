"""melunmix.scoring.track_audio: a test song's audio for scoring, and what it refuses."""

from __future__ import annotations

import re
import shutil

import pytest

from melunmix.scoring import evaluate as ev


def test_test_set_without_vocals(data_root, tracks, tmp_path):
    import musdb

    root = tmp_path / "novocals"
    shutil.copytree(tracks[0].path, root / "test" / tracks[0].name)
    (root / "test" / tracks[0].name / "vocals.wav").unlink()
    track = musdb.DB(root=str(root), is_wav=True, subsets="test").tracks[0]
    with pytest.raises(ValueError, match=f"'{re.escape(tracks[0].name)}'.*no vocals stem"):
        ev.evaluate_oracle("MIX", [track], tmp_path / "eval", jobs=1, progress=False)
