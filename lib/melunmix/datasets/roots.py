"""Where the tracks come from: the data root, the built-in generated dataset, fingerprints.

The data root is, in order: an explicit ``data_root`` setting, the ``MUSDB_ROOT``
environment variable, the ``MUSDB_PATH`` environment variable (the one the musdb package
reads), and otherwise the built-in generated dataset under
``<generated>/<parameters>/``, which :func:`ensure_dataset` renders on first use with
:mod:`melunmix.synth`; ``<generated>`` is ``$MELUNMIX_DATA_DIR``, else ``data/generated``
of the source checkout holding the working directory, else of the working directory
(:func:`melunmix.base.config.generated_data_root`), never a folder of the installed package.
Each set of generator parameters gets its own folder, so profiles that generate different
datasets (smoke, demo) never overwrite each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..base.dataset_format import GENERATOR_VERSION

#: Files whose presence marks a finished generated dataset (the generator writes them last).
GENERATED_MARKERS = ("dataset.json", "setup.yaml")

#: Audio files that make up a dataset, for the fingerprint of datasets without a dataset.json.
AUDIO_SUFFIXES = (".wav", ".stem.mp4")


def default_generated_root() -> Path:
    """Parent folder of the built-in generated datasets (:func:`melunmix.base.config.generated_data_root`).

    ``$MELUNMIX_DATA_DIR``, else ``data/generated`` under :func:`melunmix.base.config.home_dir`
    (the checkout's ``data/generated`` in a source checkout).
    """
    from melunmix.base.config import generated_data_root

    return generated_data_root()


def generated_dataset_name(generated: Mapping[str, Any] | Any | None = None) -> str:
    """Folder name of a generated dataset, from its parameters.

    Example: ``train24-valid3-test6_30s_seed0_v2`` (``v2``: the generator version;
    ``_22050Hz`` appended for a rate other than 44.1 kHz).
    """
    p = _generated_params(generated)
    from melunmix.base.config import GeneratedData

    defaults = dataclasses.asdict(GeneratedData())
    p = {**defaults, **p}

    # The generator version is part of the name: new generator code never reuses (or
    # refuses) a dataset an older version rendered; it renders its own next to it.
    name = (f"train{int(p['nb_train'])}-valid{int(p['nb_valid'])}-test{int(p['nb_test'])}"
            f"_{float(p['duration']):g}s_seed{int(p['seed'])}_v{GENERATOR_VERSION}")
    rate = p.get("sample_rate")
    if rate is not None and float(rate) != 44100:
        name += f"_{float(rate):g}Hz"
    return name


def generated_root(generated: Mapping[str, Any] | Any | None = None) -> Path:
    """Folder of the built-in dataset made with ``generated`` parameters."""
    return default_generated_root() / generated_dataset_name(generated)


def resolve_data_root(
    data_root: str | os.PathLike | None = None, generated: Mapping[str, Any] | Any | None = None
) -> Path:
    """Return the dataset root to use; nothing is checked or generated here.

    Parameters
    ----------
    data_root : path, optional
        Explicit setting (a MUSDB18 or MUSDB18-HQ root with ``train/`` and ``test/``).
        When ``None``: ``$MUSDB_ROOT``, else ``$MUSDB_PATH``, else the generated
        dataset's folder for ``generated`` (:func:`generated_root`).
    generated : mapping or GeneratedData, optional
        Parameters of the built-in dataset (default :class:`melunmix.base.config.GeneratedData`).

    Returns
    -------
    Path
        Absolute path of the root.
    """
    if data_root is None or str(data_root) == "":
        for variable in ("MUSDB_ROOT", "MUSDB_PATH"):
            if os.environ.get(variable):
                data_root = os.environ[variable]
                break
        else:
            return generated_root(generated)
    return Path(data_root).expanduser().resolve()


def check_study_root(root: str | os.PathLike, profile: str, needs_musdb: bool, stand_in: bool) -> bool:
    """Refuse to run a MUSDB18 profile silently on the generated data.

    Parameters
    ----------
    root : path
        The resolved data root (:func:`resolve_data_root`).
    profile : str
        Profile name, for the message.
    needs_musdb : bool
        The profile is a study on MUSDB18 (``data.needs_musdb``: ``poster``, ``umx``).
    stand_in : bool
        The user asked explicitly to run it on the generated dataset instead.

    Returns
    -------
    bool
        True when the run uses generated data in place of MUSDB18 (a *stand-in* run,
        which the manifest and the report must say).

    Raises
    ------
    ValueError
        One line naming ``MUSDB_ROOT`` / ``--data-root`` and the stand-in option, when a
        MUSDB18 profile has no MUSDB18 root and no stand-in was asked for.
    """
    generated = is_generated_root(root)
    if needs_musdb and generated and not stand_in:
        raise ValueError(
            f"profile {profile!r} is the study on MUSDB18 and no MUSDB18 root was given: set MUSDB_ROOT="
            "/path/to/musdb18 (or pass --data-root PATH); to run it on the generated stand-in data "
            "instead, pass --stand-in (make: STAND_IN=1)"
        )
    return bool(needs_musdb and generated)


def is_generated_root(root: str | os.PathLike) -> bool:
    """True when ``root`` is one of the built-in generated datasets' folders."""
    return Path(root).expanduser().resolve().parent == default_generated_root().resolve()


def generated_dataset_complete(root: str | os.PathLike) -> bool:
    """True when a generated dataset in ``root`` was written to the end.

    The generator writes ``dataset.json`` and ``setup.yaml`` after every track, so both
    being present (with ``train/`` and ``test/``) means no track is missing.
    """
    root = Path(root)
    return all((root / name).is_file() for name in GENERATED_MARKERS) and all(
        (root / subset).is_dir() for subset in ("train", "test")
    )


def ensure_dataset(
    data_root: str | os.PathLike | None = None,
    generated: Mapping[str, Any] | Any | None = None,
    progress: bool = True,
) -> Path:
    """Resolve the data root and render the built-in dataset there on first use.

    Only the generated root is ever written: a user-given root (setting or environment
    variable) is returned as it is and checked later by :func:`find_tracks`.

    Parameters
    ----------
    data_root : path, optional
        As in :func:`resolve_data_root`.
    generated : mapping or dataclass, optional
        Arguments of :func:`melunmix.synth.make_dataset`: ``nb_train``, ``nb_valid``,
        ``nb_test``, ``duration`` (seconds per song), ``seed`` and optionally
        ``sample_rate``. A :class:`melunmix.base.config.GeneratedData` is accepted as well.
        Defaults to :class:`melunmix.base.config.GeneratedData`'s defaults.
    progress : bool
        Show the generator's progress bar.

    Returns
    -------
    Path
        The dataset root, complete.
    """
    root = resolve_data_root(data_root, generated)
    if not is_generated_root(root):
        return root
    params = _generated_params(generated)
    if generated_dataset_complete(root) and _same_parameters(root, params):
        return root
    # Missing, interrupted, or made with other parameters: make_dataset finishes the first
    # two and refuses the last with a message naming the differences.
    from melunmix import synth  # lazy: the generator needs the soundfont stack

    synth.make_dataset(out_dir=root, progress=progress, **params)
    if not generated_dataset_complete(root):
        raise RuntimeError(
            f"melunmix.synth.make_dataset did not leave a complete dataset in {root} "
            f"(expected {', '.join(GENERATED_MARKERS)}, train/ and test/); delete {root} and retry"
        )
    return root


def _generated_params(generated: Mapping[str, Any] | Any | None) -> dict[str, Any]:
    if generated is None:
        from melunmix.base.config import GeneratedData

        generated = GeneratedData()
    if dataclasses.is_dataclass(generated) and not isinstance(generated, type):
        generated = dataclasses.asdict(generated)
    if not isinstance(generated, Mapping):
        raise TypeError(
            f"generated must be a mapping of make_dataset arguments or a GeneratedData, got {type(generated).__name__}"
        )
    allowed = {"nb_train", "nb_valid", "nb_test", "duration", "seed", "sample_rate"}
    unknown = set(generated) - allowed
    if unknown:
        raise ValueError(f"generated has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(generated)


def _same_parameters(root: Path, params: dict[str, Any]) -> bool:
    """True when ``root/dataset.json`` records the asked generator parameters."""
    try:
        found = json.loads((root / "dataset.json").read_text())["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all(
        name in found and (found[name] == value or _numbers_equal(found[name], value)) for name, value in params.items()
    )


def _numbers_equal(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def dataset_fingerprint(root: str | os.PathLike) -> str:
    """A short hash that changes when the dataset changes, for manifests and cache keys.

    A generated dataset is identified by its audio alone: the ``fingerprint`` its
    ``dataset.json`` records (a hash of every stem file's bytes), so that the same audio
    made with other library versions (which the card also records) has the same
    fingerprint; a card without one is hashed whole. Any other root by the sorted list of
    audio files under ``train/`` and ``test/`` with their sizes and modification times. The
    root's ``setup.yaml`` (the validation split) is part of the hash in every case.

    Parameters
    ----------
    root : path
        Dataset root.

    Returns
    -------
    str
        16 hexadecimal characters.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist; cannot fingerprint it")
    digest = hashlib.sha256()
    setup = root / "setup.yaml"
    if setup.is_file():
        digest.update(b"setup.yaml\0" + setup.read_bytes())
    card = root / "dataset.json"
    if card.is_file():
        try:
            audio = json.loads(card.read_text()).get("fingerprint")
        except (ValueError, AttributeError):
            audio = None
        if isinstance(audio, str) and audio:
            digest.update(b"audio\0" + audio.encode())
        else:
            digest.update(b"dataset.json\0" + card.read_bytes())
        return digest.hexdigest()[:16]
    entries = []
    for subset in ("train", "test"):
        folder = root / subset
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name.endswith(AUDIO_SUFFIXES) and not _hidden(path, folder):
                stat = path.stat()
                entries.append([path.relative_to(root).as_posix(), stat.st_size, int(stat.st_mtime)])
    if not entries:
        raise FileNotFoundError(
            f"no .wav or .stem.mp4 files under {root}/train or {root}/test; "
            "point data_root at a MUSDB18 / MUSDB18-HQ root"
        )
    digest.update(json.dumps(entries).encode())
    return digest.hexdigest()[:16]


def _hidden(path: Path, base: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(base).parts)
