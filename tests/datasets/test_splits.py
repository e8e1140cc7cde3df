"""melunmix.datasets.splits: the derived validation split."""

from __future__ import annotations

import hashlib

from melunmix import datasets
from melunmix.datasets import splits


# --------------------------------------------------------------------------- the split
def test_derived_split_is_one_in_seven_seeded_and_stable():
    for nb, expected in ((2, 1), (6, 1), (7, 1), (20, 3), (100, 14)):
        names = [f"Artist {i:03d} - Song" for i in range(nb)]
        chosen = datasets.derive_validation_tracks(names)
        assert len(chosen) == expected and set(chosen) <= set(names) and chosen == sorted(chosen)
        # the rule as documented: the names ranked by sha256("<seed>\0<name>"), the first ones
        ranked = sorted(names, key=lambda n: hashlib.sha256(f"{splits.VALID_SEED}\0{n}".encode()).hexdigest())
        assert chosen == sorted(ranked[:expected])
        assert datasets.derive_validation_tracks(list(reversed(names))) == chosen
    names = [f"Artist {i:03d} - Song" for i in range(100)]
    assert datasets.derive_validation_tracks(names, seed=1) != datasets.derive_validation_tracks(names)
