"""Finding tracks: MUSDB18 (``.stem.mp4``), MUSDB18-HQ / decoded WAV and the generated set.

The track list and the metadata come from the ``musdb`` package, so a root that works
here works with ``musdb.DB`` and ``museval`` too; the train/validation split is the setup
file's where its songs are in the root, else derived (:mod:`.splits`). Every
track is checked once here (all stems present, stereo, same rate and length) so that a
broken dataset fails with a message naming the track, not deep inside a DataLoader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
import yaml

from ..base.dataset_format import GENERATED_FORMAT
from ..base.names import SOURCES, STEMS
from .layout import FOUR_STEMS, StemLayout, layout_of
from .splits import validation_split

#: Keys a musdb setup file must have (see musdb/configs/mus.yaml).
SETUP_KEYS = ("sources", "mixture", "stem_ids", "targets", "validation_tracks")
#: Samples per AAC frame: the granularity of .stem.mp4 stream lengths.
AAC_FRAME = 1024


@dataclass(frozen=True, eq=False)
class TrackInfo:
    """One track and where its audio is.

    Attributes
    ----------
    name : str
        Track name, ``"Artist - Title"`` for MUSDB18.
    subset : str
        ``"train"`` or ``"test"``.
    split : str or None
        ``"train"`` or ``"valid"`` for the train subset
        (:func:`melunmix.datasets.validation_split`), ``None`` for the test subset.
    path : Path
        The track folder (WAV) or the ``.stem.mp4`` file.
    root : Path
        The dataset root the track was found in.
    stems : dict of str to Path
        WAV file per stem name (``mixture``, ``vocals``, ``drums``, ``bass``, ``other``;
        ``mixture`` and ``vocals`` for a song of mixture + vocals, with the derived
        ``accompaniment`` once :func:`prepare_tracks` has made it); empty for a
        ``.stem.mp4`` track until :func:`decode_to_wav_cache` decodes it.
    rate : int
        Sample rate in Hz.
    nb_samples : int
        Length in samples (frames) of every stem.
    nb_channels : int
        Channels of every stem (2).
    is_wav : bool
        The source format on disk: WAV folder (True) or ``.stem.mp4`` (False).
    stem_ids : dict of str to int
        Stream index of every stem inside a ``.stem.mp4`` (from the setup file).
    layout : StemLayout
        Which stems the song holds (:mod:`.layout`): MUSDB18's four, or mixture + vocals.
    """

    name: str
    subset: str
    split: str | None
    path: Path
    root: Path
    stems: dict[str, Path]
    rate: int
    nb_samples: int
    nb_channels: int
    is_wav: bool
    stem_ids: dict[str, int] = field(default_factory=dict)
    layout: StemLayout = FOUR_STEMS

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.nb_samples / self.rate

    def wav(self, stem: str) -> Path:
        """Path of the WAV file of ``stem``; an error if the track was not decoded yet."""
        if not self.stems:
            raise ValueError(
                f"track '{self.name}' ({self.path}) is a .stem.mp4 that has not been decoded; "
                "pass it through decode_to_wav_cache() or prepare_tracks() first"
            )
        if stem not in self.stems:
            raise KeyError(f"track '{self.name}' has no stem '{stem}'; stems: {sorted(self.stems)}")
        return self.stems[stem]


def find_tracks(
    root: str | os.PathLike,
    subset: str = "train",
    split: str | None = None,
    is_wav: bool | None = None,
    setup_file: str | os.PathLike | None = None,
    valid_tracks: Sequence[str] | None = None,
) -> list[TrackInfo]:
    """List and check the tracks of one subset (and split) of a MUSDB18-format root.

    Any folder in the MUSDB18 layout works, not only MUSDB18: when none of the setup
    file's validation songs is in ``train/``, a validation split is derived from the
    train songs (see :mod:`.splits`).

    Parameters
    ----------
    root : path
        Dataset root holding ``train/`` and ``test/``.
    subset : {"train", "test"}
        Which subset.
    split : {None, "train", "valid"}
        With ``subset="train"``: the training or the validation tracks
        (:func:`melunmix.datasets.validation_split`: ``valid_tracks``, else the setup
        file's ``validation_tracks`` found in ``train/``, 14 tracks for MUSDB18, else a
        derived split); ``None`` gives all.
    is_wav : bool, optional
        WAV folders (True) or ``.stem.mp4`` files (False); ``None`` detects it from what
        the subset folder holds.
    setup_file : path, optional
        A musdb setup file (absolute, or relative to ``root``); ``None`` uses
        ``root/setup.yaml`` when present (the generated dataset writes one), else musdb's
        own MUSDB18 setup.
    valid_tracks : sequence of str, optional
        Validation songs by name (the profile's ``data.valid_tracks``), instead of the
        setup file's list; each must be a song of ``train/``.

    Returns
    -------
    list of TrackInfo
        Sorted by name, as musdb lists them.

    Raises
    ------
    FileNotFoundError
        Missing root, subset folder, setup file or stem.
    ValueError
        A bad argument, a mono stem, stems of unequal length or rate, an empty subset
        folder, fewer than 2 train songs when a split is asked for, or a ``valid_tracks``
        name that is not a train song.
    """
    root = Path(root).expanduser().absolute()
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if split not in (None, "train", "valid"):
        raise ValueError(f"split must be None, 'train' or 'valid', got {split!r}")
    if split is not None and subset != "train":
        raise ValueError(f"split={split!r} needs subset='train' (the test subset has no validation split)")
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist; give --data-root (data_root in Python, or $MUSDB_ROOT) a "
            "MUSDB18 / MUSDB18-HQ folder with train/ and test/, or leave them unset to use the generated dataset"
        )
    subset_dir = root / subset
    if not subset_dir.is_dir():
        raise FileNotFoundError(
            f"{subset_dir} does not exist; a MUSDB18 root holds train/ and test/ ({_fix_hint(root)})"
        )
    setup_path = setup_file_path(root, setup_file)
    setup = read_setup(setup_path)
    if is_wav is None:
        is_wav = _detect_is_wav(subset_dir)

    import musdb  # lazy: importing musdb imports stempeg, which needs ffmpeg on PATH

    # musdb lists the songs; the split is ours (musdb's would be empty on a root that
    # holds none of its validation songs).
    db = musdb.DB(
        root=str(root),
        setup_file=None if setup_path is None else str(setup_path.absolute()),
        is_wav=is_wav,
        subsets=subset,
    )
    listed = [track for track in db.tracks if not track.name.startswith(".")]  # e.g. .ipynb_checkpoints
    validation: set[str] = set()
    if subset == "train":

        validation = set(validation_split(
            root, setup["validation_tracks"], valid_tracks, is_wav, setup_path,
            names=[track.name for track in listed], strict=split is not None,
        ).tracks)
    tracks = []
    for track in listed:
        track_split = None if subset == "test" else ("valid" if track.name in validation else "train")
        if split is not None and track_split != split:
            continue
        if is_wav:
            tracks.append(_wav_track(track.name, subset, track_split, Path(track.path).parent, root, setup))
        else:
            tracks.append(_stem_track(track, subset, track_split, root, setup))
    if not tracks:
        kind = "WAV track folders" if is_wav else ".stem.mp4 files"
        raise ValueError(f"no {kind} in {subset_dir}; {_fix_hint(root)}")
    return tracks


def setup_file_path(root: Path, setup_file: str | os.PathLike | None) -> Path | None:
    if setup_file is None:
        candidate = root / "setup.yaml"
        return candidate if candidate.is_file() else None
    path = Path(setup_file).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        raise FileNotFoundError(f"setup file {path} does not exist; pass a musdb setup YAML or None for MUSDB18's")
    return path


def read_setup(setup_path: Path | None) -> dict:
    if setup_path is None:
        import importlib.util

        spec = importlib.util.find_spec("musdb")
        setup_path = Path(spec.origin).parent / "configs" / "mus.yaml"
    with open(setup_path) as fh:
        try:
            setup = yaml.safe_load(fh)
        except yaml.YAMLError as err:
            raise ValueError(f"setup file {setup_path} is not valid YAML ({err})") from err
    missing = [key for key in SETUP_KEYS if not isinstance(setup, dict) or key not in setup]
    if missing:
        raise ValueError(
            f"setup file {setup_path} lacks {missing}; "
            f"it must have the keys of musdb's configs/mus.yaml: {list(SETUP_KEYS)}"
        )
    return setup


def _detect_is_wav(subset_dir: Path) -> bool:
    entries = [entry for entry in subset_dir.iterdir() if not entry.name.startswith(".")]
    if not entries:
        raise ValueError(
            f"{subset_dir} is empty; put the {subset_dir.name} songs there in the MUSDB18 layout: "
            "<song>/mixture.wav, vocals.wav, drums.wav, bass.wav, other.wav (MUSDB18-HQ) or <song>.stem.mp4 (MUSDB18)"
        )
    if any(entry.is_dir() for entry in entries):
        return True
    if any(entry.name.endswith(".stem.mp4") for entry in entries):
        return False
    raise ValueError(
        f"{subset_dir} holds neither track folders (MUSDB18-HQ WAV) nor .stem.mp4 files (MUSDB18); "
        "point data_root at a MUSDB18 root"
    )


def _made_by_melunmix(root: Path) -> bool:
    """True only for a folder the generator wrote: its ``dataset.json`` says so.

    A user's own dataset may hold a ``setup.yaml`` (musdb's setup file) too; only the
    generator's manifest earns the advice to delete and regenerate the folder.
    """
    import json

    try:
        card = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("format") == GENERATED_FORMAT


def _fix_hint(root: Path) -> str:
    if _made_by_melunmix(root):
        return (
            f"this is a generated dataset: delete {root} and regenerate it "
            "(`melunmix make-dataset`, or on first use)"
        )
    return (
        "MUSDB18-HQ tracks need mixture.wav, vocals.wav, drums.wav, bass.wav and other.wav, stereo, equal length; "
        "re-download the track or convert MUSDB18 stems with `musdbconvert <musdb18-root> <wav-root>`"
    )


def _wav_track(name: str, subset: str, split: str | None, folder: Path, root: Path, setup: dict) -> TrackInfo:
    file_names = {"mixture": setup["mixture"]}
    file_names.update({src: setup["sources"][src] for src in SOURCES if src in setup["sources"]})
    undefined = [stem for stem in STEMS if stem not in file_names]
    if undefined:
        raise ValueError(f"the setup file defines no file for stem '{undefined[0]}' (track '{name}')")
    layout = layout_of([stem for stem in STEMS if (folder / file_names[stem]).is_file()], name, folder,
                       _fix_hint(root), file_names)
    stems, infos = {}, {}
    for stem in layout.files:
        path = folder / file_names[stem]
        try:
            infos[stem] = sf.info(str(path))
        except RuntimeError as err:
            raise ValueError(f"track '{name}': {path} is not a readable audio file ({err}); {_fix_hint(root)}") from err
        stems[stem] = path
    _check_consistent(
        name,
        {stem: (info.samplerate, info.frames, info.channels, stems[stem].name) for stem, info in infos.items()},
        root,
    )
    first = infos["mixture"]
    return TrackInfo(
        name=name,
        subset=subset,
        split=split,
        path=folder,
        root=root,
        stems=stems,
        rate=int(first.samplerate),
        nb_samples=int(first.frames),
        nb_channels=int(first.channels),
        is_wav=True,
        layout=layout,
    )


def _stem_track(track, subset: str, split: str | None, root: Path, setup: dict) -> TrackInfo:
    path = Path(track.path)
    info = track.info  # stempeg.Info (ffprobe), read by musdb when it listed the track
    stem_ids = {stem: int(setup["stem_ids"][stem]) for stem in STEMS}
    if info is None or info.nb_audio_streams <= max(stem_ids.values()):
        nb_streams = 0 if info is None else info.nb_audio_streams
        raise ValueError(
            f"track '{track.name}' ({path}) has {nb_streams} audio streams; a MUSDB18 .stem.mp4 holds 5 "
            f"(mixture, drums, bass, other, vocals); re-download it or use the MUSDB18-HQ WAV version"
        )
    properties = {}
    for stem, sid in stem_ids.items():
        rate = info.sample_rate(sid)
        properties[stem] = (rate, int(round(info.duration(sid) * rate)), info.channels(sid), f"stream {sid}")
    # ffprobe durations of AAC streams can disagree by part of a codec frame; the decoder
    # trims every stem to the shortest, so only a larger gap is an error.
    _check_consistent(track.name, properties, root, length_tolerance=AAC_FRAME)
    rate, _, nb_channels, _ = properties["mixture"]
    nb_samples = min(prop[1] for prop in properties.values())
    return TrackInfo(
        name=track.name,
        subset=subset,
        split=split,
        path=path,
        root=root,
        stems={},
        rate=int(rate),
        nb_samples=int(nb_samples),
        nb_channels=int(nb_channels),
        is_wav=False,
        stem_ids=stem_ids,
    )


def _check_consistent(
    name: str, properties: dict[str, tuple[int, int, int, str]], root: Path, length_tolerance: int = 0
) -> None:
    """Raise unless every stem is stereo and all share one rate and one length.

    ``properties`` maps stem name to ``(rate, nb_samples, nb_channels, where)``; lengths
    may differ by up to ``length_tolerance`` samples.
    """
    for stem, (_, _, nb_channels, where) in properties.items():
        if nb_channels != 2:
            kind = "mono" if nb_channels == 1 else f"{nb_channels}-channel"
            raise ValueError(
                f"track '{name}': {stem} ({where}) is {kind}; "
                f"melunmix needs stereo stems as in MUSDB18 ({_fix_hint(root)})"
            )
    rates = {stem: prop[0] for stem, prop in properties.items()}
    if len(set(rates.values())) > 1:
        raise ValueError(f"track '{name}': stems have different sample rates {rates}; {_fix_hint(root)}")
    lengths = {stem: prop[1] for stem, prop in properties.items()}
    if max(lengths.values()) - min(lengths.values()) > length_tolerance:
        raise ValueError(f"track '{name}': stems have different lengths in samples {lengths}; {_fix_hint(root)}")
    if min(lengths.values()) == 0:
        raise ValueError(f"track '{name}': stems are empty (0 samples); {_fix_hint(root)}")
