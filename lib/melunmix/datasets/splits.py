"""The validation split: which train songs are held out to validate training.

Three sources, in order:

1. ``profile``: the profile lists the validation songs by name (``data.valid_tracks``);
   every name must be a song of ``<root>/train``.
2. ``musdb setup``: the setup file's ``validation_tracks`` (musdb's 14 for MUSDB18, the
   generator's ``setup.yaml`` for the built-in dataset), those of them found in
   ``<root>/train``.
3. ``derived``: when none of those names is in ``<root>/train`` (a user's own songs in
   the MUSDB18 layout, a MUSDB18 subset, the 7-second preview set, converted MedleyDB),
   about 1 song in 7 (as musdb's 14 of 100), at least 1, chosen by a seeded hash of the
   names: the same songs on every machine and in every run, and adding a song moves at
   most the songs it displaces.

The derived split is printed once per process (one line listing it) and, through
:func:`melunmix.datasets.root_record`, recorded in the run's manifest.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

#: Share of the train songs held out by a derived split: musdb's 14 of 100.
VALID_FRACTION = 14 / 100
#: Seed of the derived split (part of the hash of every name).
VALID_SEED = 0
#: The sources of a split, as recorded in the manifest.
SPLIT_SOURCES = ("profile", "musdb setup", "derived")

_printed: set[tuple[str, tuple[str, ...]]] = set()


@dataclass(frozen=True)
class ValidationSplit:
    """The validation songs of a root and where the list came from.

    Attributes
    ----------
    source : {"profile", "musdb setup", "derived"}
        See the module docstring.
    tracks : tuple of str
        Validation song names, sorted.
    nb_train_songs : int
        Songs in ``<root>/train``, the validation songs included.
    setup_file : str or None
        The setup file whose list was used (``source == "musdb setup"``).
    """

    source: str
    tracks: tuple[str, ...]
    nb_train_songs: int
    setup_file: str | None = None

    def to_dict(self) -> dict:
        """What the manifest records: ``{"source", "tracks", "nb_train_songs", ...}``."""
        out = {"source": self.source, "tracks": list(self.tracks), "nb_train_songs": self.nb_train_songs}
        if self.source == "derived":
            out.update(fraction=round(VALID_FRACTION, 4), seed=VALID_SEED)
        if self.setup_file is not None:
            out["setup_file"] = self.setup_file
        return out


def track_names(root: str | os.PathLike, subset: str, is_wav: bool | None = None) -> list[str]:
    """Song names of ``<root>/<subset>`` as musdb lists them, without reading any audio.

    Track folders (MUSDB18-HQ / WAV) or ``<name>.stem.mp4`` files (MUSDB18); hidden
    entries are skipped. An absent folder gives an empty list.

    Parameters
    ----------
    root : path
        Dataset root.
    subset : {"train", "test"}
        Which folder.
    is_wav : bool, optional
        Folders (True) or ``.stem.mp4`` files (False); ``None``: folders when there are any.

    Returns
    -------
    list of str
        Sorted names.
    """
    folder = Path(root).expanduser() / subset
    if not folder.is_dir():
        return []
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    if is_wav is None:
        is_wav = any(entry.is_dir() for entry in entries)
    if is_wav:
        return sorted(entry.name for entry in entries if entry.is_dir())
    return sorted(entry.name[: -len(".stem.mp4")] for entry in entries
                  if entry.is_file() and entry.name.endswith(".stem.mp4"))


def derive_validation_tracks(names: Sequence[str], seed: int = VALID_SEED) -> list[str]:
    """About 1 in 7 of ``names`` (at least 1), chosen by a seeded hash of each name.

    Parameters
    ----------
    names : sequence of str
        Train song names (two or more, or the train split would be empty).
    seed : int
        Part of every name's hash; another seed gives another split.

    Returns
    -------
    list of str
        The validation names, sorted.
    """
    names = sorted(set(names))
    nb_valid = max(1, int(round(len(names) * VALID_FRACTION)))
    ranked = sorted(names, key=lambda name: hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest())
    return sorted(ranked[:nb_valid])


def validation_split(
    root: str | os.PathLike,
    setup_tracks: Sequence[str] | None = None,
    valid_tracks: Sequence[str] | None = None,
    is_wav: bool | None = None,
    setup_file: str | os.PathLike | None = None,
    names: Sequence[str] | None = None,
    strict: bool = True,
) -> ValidationSplit:
    """The validation songs of ``root``: from the profile, the setup file, or derived.

    Parameters
    ----------
    root : path
        Dataset root.
    setup_tracks : sequence of str, optional
        The setup file's ``validation_tracks``.
    valid_tracks : sequence of str, optional
        The profile's ``data.valid_tracks``: used instead of the setup file's list.
    is_wav : bool, optional
        As in :func:`track_names`.
    setup_file : path, optional
        Where ``setup_tracks`` came from, for the record (``None``: musdb's MUSDB18 setup).
    names : sequence of str, optional
        The train song names when the caller has listed them already.
    strict : bool
        Raise when the split leaves no song to train on (training needs one); with
        ``False`` such a split is returned as it is (listing songs needs no training).

    Returns
    -------
    ValidationSplit

    Raises
    ------
    ValueError
        A profile name that is not a song of ``<root>/train``; with ``strict``, fewer than
        2 train songs or a split that leaves none to train on (one line naming the root
        and the fix).
    """
    root = Path(root).expanduser()
    names = sorted(names) if names is not None else track_names(root, "train", is_wav)
    present = set(names)
    if valid_tracks is not None:
        missing = [name for name in valid_tracks if name not in present]
        if missing:
            shown = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
            raise ValueError(
                f"data.valid_tracks names {', '.join(repr(n) for n in missing)}, not a song of {root / 'train'}; "
                f"list songs of that folder ({shown or 'it holds none'}) or remove the key to derive the split"
            )
        split = ValidationSplit("profile", tuple(sorted(set(valid_tracks))), len(names))
    else:
        listed = sorted(present.intersection(setup_tracks or ()))
        if listed:
            setup_name = str(setup_file) if setup_file is not None else "musdb's MUSDB18 setup (mus.yaml)"
            split = ValidationSplit("musdb setup", tuple(listed), len(names), setup_name)
        elif len(names) >= 2:
            split = ValidationSplit("derived", tuple(derive_validation_tracks(names)), len(names))
        else:
            split = ValidationSplit("derived", (), len(names))
    if strict:
        _check_trainable(root, names, split)
    if split.source == "derived" and split.tracks:
        _print_once(root, split)
    return split


def _check_trainable(root: Path, names: Sequence[str], split: ValidationSplit) -> None:
    train = root / "train"
    if len(names) < 2:
        raise ValueError(
            f"{train} holds {len(names)} song(s); training needs at least 2 (one is held out to validate): "
            f"add songs in the MUSDB18 layout there, or, to score saved models only, run notebooks 05-06 "
            f"(`melunmix reproduce --only 05 06`) or `melunmix score`"
        )
    if len(split.tracks) >= len(names):
        raise ValueError(
            f"every song of {train} is a validation song ({split.source}: {', '.join(split.tracks)}), "
            "none is left to train on; list fewer songs in data.valid_tracks or add songs to that folder"
        )


def _print_once(root: Path, split: ValidationSplit) -> None:
    key = (str(root.resolve()), split.tracks)
    if key in _printed:
        return
    _printed.add(key)
    print(
        f"validation split derived for {root} (none of the setup's validation songs is in train/): "
        f"{len(split.tracks)} of {split.nb_train_songs} songs: {'; '.join(split.tracks)}",
        flush=True,
    )
