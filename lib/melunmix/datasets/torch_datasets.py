"""Training and validation datasets (``torch.utils.data.Dataset``) in the Open-Unmix recipe.

Training items follow Open-Unmix's train script: every source (vocals, drums, bass,
other) comes from a random track, drawn with replacement, as a random chunk of
``seq_dur`` seconds with a random gain in [0.25, 1.25] and a random left/right swap
(p = 0.5); the mixture is the sum of the four augmented sources. Songs of mixture +
vocals (:mod:`.layout`) mix two sources the same way, the vocals and the accompaniment
derived as ``mixture - vocals``. Validation items are the real full mixtures (or fixed
chunks of them) with their true targets.

Reproducibility with any number of DataLoader workers: item ``i`` of epoch ``e`` draws
from a generator seeded with ``(seed, e, i)``, so it is the same whichever worker builds
it and in whatever order; :meth:`TrainDataset.set_epoch` makes epochs differ.
:class:`GlobalBatchSampler` gives the epoch's shuffled batches, or one training process's
share of each (several processes under ``torchrun``, :mod:`melunmix.training.distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .prepare import prepare_tracks
from .reading import read_chunk, read_native
from ..base.names import ACCOMPANIMENT, TARGETS
from .layout import StemLayout, check_targets, common_layout
from .tracks import TrackInfo


class TrainDataset(Dataset):
    """Augmented training excerpts mixed from random tracks (Open-Unmix recipe).

    Parameters
    ----------
    tracks : sequence of TrackInfo
        Training tracks (``find_tracks(root, "train", split="train")``); ``.stem.mp4``
        tracks are decoded into the WAV cache first.
    targets : sequence of str
        Names from ``("vocals", "drums", "bass", "other", "accompaniment")``.
    seq_dur : float
        Excerpt length in seconds.
    samples_per_track : int
        Items per track and epoch; ``len(dataset) = samples_per_track * nb_tracks``.
    random_chunks : bool
        Random excerpt starts; False takes ``samples_per_track`` evenly spaced starts.
    gain_range : (float, float) or None
        Each source is scaled by a gain drawn uniformly from this range; None: no gain.
    swap_channels : bool
        Swap left and right of each source with probability 0.5.
    seed : int
        Seed (>= 0); the same seed and epoch give the same items.
    sample_rate : float, optional
        Resample every track to this rate (Hz; cached on disk); None keeps the tracks'
        rate, which must then be the same for all tracks.
    random_track_mix : bool
        Each source from a random track (True, the recipe); False keeps all the sources
        of item ``i`` (four, or vocals and accompaniment) from track
        ``i // samples_per_track``, at one common start.
    cache_dir : path, optional
        Decode/resample cache; None uses :func:`default_cache_dir` of the tracks' root.
    progress : bool
        Progress bars while caches are built.

    Notes
    -----
    An item is ``(mixture, target)``: ``mixture`` has shape ``(nb_channels, nb_samples)``;
    ``target`` has shape ``(nb_channels, nb_samples)`` for one target and
    ``(nb_targets, nb_channels, nb_samples)`` for several; float32, linear amplitude.
    Tracks shorter than ``seq_dur`` are zero-padded at the end.
    """

    def __init__(
        self,
        tracks: Sequence[TrackInfo],
        targets: Sequence[str] = ("vocals",),
        seq_dur: float = 6.0,
        samples_per_track: int = 64,
        random_chunks: bool = True,
        gain_range: tuple[float, float] | None = (0.25, 1.25),
        swap_channels: bool = True,
        seed: int = 42,
        sample_rate: float | None = None,
        random_track_mix: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        self.targets = _check_targets(targets)
        if seq_dur is None or not seq_dur > 0:
            raise ValueError(f"seq_dur must be a positive number of seconds for training, got {seq_dur!r}")
        if int(samples_per_track) < 1:
            raise ValueError(f"samples_per_track must be >= 1, got {samples_per_track!r}")
        if gain_range is not None:
            low, high = (float(g) for g in gain_range)
            if not 0 <= low <= high:
                raise ValueError(f"gain_range must be (low, high) with 0 <= low <= high, got {gain_range!r}")
            gain_range = (low, high)
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed!r}")
        self.tracks = prepare_tracks(tracks, sample_rate=sample_rate, cache_dir=cache_dir, progress=progress)
        self.rate = _common_rate(self.tracks)
        self.nb_channels = self.tracks[0].nb_channels
        self.seq_dur = float(seq_dur)
        self.nb_samples = int(round(self.seq_dur * self.rate))
        self.samples_per_track = int(samples_per_track)
        self.random_chunks = bool(random_chunks)
        self.gain_range = gain_range
        self.swap_channels = bool(swap_channels)
        self.random_track_mix = bool(random_track_mix)
        self.seed = int(seed)
        self.epoch = 0
        self.layout = common_layout(self.tracks)
        check_targets(self.targets, self.layout, "training items")
        # Plain strings and ints only: the dataset is pickled into every worker.
        self._paths = [[str(track.wav(src)) for src in self.layout.sources] for track in self.tracks]
        self._lengths = [track.nb_samples for track in self.tracks]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose items ``__getitem__`` returns (call before iterating).

        DataLoader workers receive a copy of the dataset when an epoch's iteration starts,
        so this works with ``num_workers > 0`` unless ``persistent_workers=True``.
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_track * len(self.tracks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = _check_index(index, len(self))
        rng = np.random.default_rng([self.seed, self.epoch, index])
        own_track = index // self.samples_per_track
        start = None
        # Sources are written channels-first straight from the file's samples: conversion,
        # gain, swap and transpose in one pass per channel (strided views in later
        # arithmetic would cost several times more).
        sources = self.layout.sources
        stack = np.empty((len(sources), self.nb_channels, self.nb_samples), dtype=np.float32)
        files = {}
        for k, source in enumerate(sources):
            track = int(rng.integers(len(self.tracks))) if self.random_track_mix else own_track
            if self.random_track_mix or start is None:
                start = self._start(rng, track, index % self.samples_per_track)
            files[source] = self._paths[track][k]
            samples, scale = read_native(files[source], start, self.nb_samples, pad=True)
            gain = np.float32(rng.uniform(*self.gain_range)) if self.gain_range is not None else np.float32(1.0)
            swap = self.swap_channels and rng.random() < 0.5
            for channel in range(self.nb_channels):
                from_channel = self.nb_channels - 1 - channel if swap else channel
                np.multiply(samples[:, from_channel], gain * scale, out=stack[k, channel])
        mixture = stack.sum(axis=0)
        audio = dict(zip(sources, stack))
        _check_item_finite(mixture, audio, files, f"training item {index}", mixture_has_sources=True)
        return torch.from_numpy(mixture), _target_tensor(audio, self.targets, self.layout)

    def _start(self, rng: np.random.Generator, track: int, position: int) -> int:
        room = max(self._lengths[track] - self.nb_samples, 0)
        if self.random_chunks:
            return int(rng.integers(room + 1))
        return room * position // max(self.samples_per_track - 1, 1)


class GlobalBatchSampler(Sampler[list[int]]):
    """The shuffled batches of one epoch, each cut into the share of one training process.

    The order is the one ``DataLoader(dataset, batch_size, shuffle=True,
    generator=torch.Generator().manual_seed(shuffle_seed))`` draws (one 64-bit draw for
    its worker seeds, then ``torch.randperm``), cut into global batches of
    ``batch_size`` (the last one may be shorter). Rank ``r`` of ``world_size`` takes the
    contiguous part ``[len(b) * r // world_size, len(b) * (r + 1) // world_size)`` of
    every global batch ``b``: the ranks' parts are disjoint, together they are the global
    batch, and the global batches are the same for any number of ranks. Each iteration
    starts a fresh generator, so iterating twice gives the same batches.

    Parameters
    ----------
    nb_items : int
        Items in the epoch (``len(dataset)``).
    batch_size : int
        Items per global batch (all ranks together).
    shuffle_seed : int
        Seed of the epoch's order (training uses one per seed and epoch).
    rank, world_size : int
        This process's rank and the number of processes (0 and 1: the whole batch).

    Raises
    ------
    ValueError
        A global batch would leave a rank without items (``batch_size`` or the last
        batch, ``nb_items % batch_size``, smaller than ``world_size``): the message gives
        the numbers and the fix.
    """

    def __init__(self, nb_items: int, batch_size: int, shuffle_seed: int, rank: int = 0, world_size: int = 1):
        self.nb_items, self.batch_size = int(nb_items), int(batch_size)
        self.shuffle_seed, self.rank, self.world_size = int(shuffle_seed), int(rank), int(world_size)
        if self.nb_items < 1 or self.batch_size < 1:
            raise ValueError(f"need at least one item and a batch size >= 1, got {nb_items} items, "
                             f"batch size {batch_size}")
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        last = self.nb_items % self.batch_size or self.batch_size
        smallest = min(self.batch_size, self.nb_items, last)
        if smallest < self.world_size:
            raise ValueError(
                f"{self.world_size} processes share each batch, but an epoch of {self.nb_items} items in batches "
                f"of {self.batch_size} has a batch of {smallest} item(s): every process needs at least one. "
                "Choose train.batch_size and data.samples_per_track so that every batch (the last one is "
                "nb_items % batch_size) holds at least as many items as processes, or start fewer processes"
            )

    def global_order(self) -> list[int]:
        """Every item index of the epoch in training order (the same on every rank)."""
        generator = torch.Generator().manual_seed(self.shuffle_seed)
        torch.empty((), dtype=torch.int64).random_(generator=generator)  # DataLoader's worker seed
        return torch.randperm(self.nb_items, generator=generator).tolist()

    def global_batches(self) -> list[list[int]]:
        """The epoch's global batches (item indices), in order."""
        order = self.global_order()
        return [order[start:start + self.batch_size] for start in range(0, self.nb_items, self.batch_size)]

    def global_batch_sizes(self) -> list[int]:
        """Items per global batch, in order."""
        return [min(self.batch_size, self.nb_items - start) for start in range(0, self.nb_items, self.batch_size)]

    def __iter__(self):
        for batch in self.global_batches():
            size = len(batch)
            yield batch[size * self.rank // self.world_size:size * (self.rank + 1) // self.world_size]

    def __len__(self) -> int:
        return -(-self.nb_items // self.batch_size)


class ValidDataset(Dataset):
    """Validation items: real mixtures and their true targets, whole tracks or fixed chunks.

    Parameters
    ----------
    tracks : sequence of TrackInfo
        Validation tracks (``find_tracks(root, "train", split="valid")``).
    targets : sequence of str
        As in :class:`TrainDataset`.
    seq_dur : float, optional
        None: one item per full track (batch size 1, the Open-Unmix validation). A number
        of seconds: consecutive non-overlapping chunks of that length (a tail shorter than
        a chunk is dropped; a track shorter than one chunk gives one zero-padded chunk),
        which bounds memory.
    sample_rate : float, optional
        Resample (cached) to this rate in Hz.
    cache_dir : path, optional
        Decode/resample cache; None uses the default of the tracks' root.
    progress : bool
        Progress bars while caches are built.

    Notes
    -----
    Item shapes as in :class:`TrainDataset`; ``mixture`` is the track's ``mixture.wav``.
    ``items[i]`` is ``(track_index, start, nb_samples)`` of item ``i``.
    """

    def __init__(
        self,
        tracks: Sequence[TrackInfo],
        targets: Sequence[str] = ("vocals",),
        seq_dur: float | None = None,
        sample_rate: float | None = None,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        self.targets = _check_targets(targets)
        if seq_dur is not None and not seq_dur > 0:
            raise ValueError(f"seq_dur must be None (full tracks) or a positive number of seconds, got {seq_dur!r}")
        self.tracks = prepare_tracks(tracks, sample_rate=sample_rate, cache_dir=cache_dir, progress=progress)
        for layout in {track.layout for track in self.tracks}:
            check_targets(self.targets, layout, "validation items")
        self.rate = _common_rate(self.tracks)
        self.seq_dur = None if seq_dur is None else float(seq_dur)
        self.items: list[tuple[int, int, int]] = []
        for t, track in enumerate(self.tracks):
            if self.seq_dur is None:
                self.items.append((t, 0, track.nb_samples))
                continue
            nb_samples = int(round(self.seq_dur * self.rate))
            for c in range(max(track.nb_samples // nb_samples, 1)):
                self.items.append((t, c * nb_samples, nb_samples))
        self._paths = [{stem: str(path) for stem, path in track.stems.items()} for track in self.tracks]
        # The sources each track's targets are made of, in its layout's order (read per item).
        self._needed = [[src for src in track.layout.sources if src in _target_sources(self.targets, track.layout)]
                        for track in self.tracks]

    def __len__(self) -> int:
        return len(self.items)

    def track(self, index: int) -> TrackInfo:
        """The track item ``index`` comes from."""
        return self.tracks[self.items[_check_index(index, len(self))][0]]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        t, start, nb_samples = self.items[_check_index(index, len(self))]
        paths = self._paths[t]
        mixture = read_chunk(paths["mixture"], start, nb_samples, pad=True)
        sources = {src: read_chunk(paths[src], start, nb_samples, pad=True) for src in self._needed[t]}
        _check_item_finite(mixture, sources, paths, f"validation item {index} (track '{self.tracks[t].name}')")
        return torch.from_numpy(mixture), _target_tensor(sources, self.targets, self.tracks[t].layout)


def _check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    if isinstance(targets, str):
        targets = (targets,)
    targets = tuple(targets)
    unknown = [name for name in targets if name not in TARGETS]
    if not targets or unknown:
        raise ValueError(f"targets must be a non-empty selection of {TARGETS}, got {targets!r}")
    return targets


def _common_rate(tracks: Sequence[TrackInfo]) -> int:
    rates = {track.rate for track in tracks}
    if len(rates) > 1:
        examples = {track.rate: track.name for track in tracks}
        raise ValueError(
            f"tracks have different sample rates {examples} (rate: example track); pass sample_rate=... "
            "to resample them all to one rate"
        )
    return rates.pop()


def _check_index(index: int, length: int) -> int:
    index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for a dataset of {length} items")
    return index


def _check_item_finite(
    mixture: np.ndarray,
    sources: dict[str, np.ndarray],
    files: dict[str, str],
    what: str,
    mixture_has_sources: bool = False,
) -> None:
    """Raise naming the file when an item holds NaN or infinite samples.

    ``files`` maps every array's name (``mixture`` and sources) to the file it was read
    from (a training mixture is computed, so it has no file of its own).
    """
    # A sum is non-finite iff some term is (float32 audio cannot overflow it), and costs far
    # less than isfinite over every sample; the slow search runs only on failure. A training
    # mixture is the sum of its sources, so its own sum covers them.
    total = mixture.sum()
    if not mixture_has_sources:
        total += sum(audio.sum() for audio in sources.values())
    if np.isfinite(total):
        return
    arrays = {"mixture": mixture, **sources}
    bad = [name for name, audio in arrays.items() if name in files and not np.isfinite(audio).all()]
    raise ValueError(
        f"{what}: non-finite samples in {', '.join(f'{name} ({files[name]})' for name in bad)}; "
        "replace the broken file (re-convert it, or delete and regenerate a generated dataset)"
    )


def _target_sources(targets: Sequence[str], layout: StemLayout) -> set[str]:
    """The sources the targets are made of (the accompaniment: the layout's sum)."""
    return {src for name in targets for src in (layout.accompaniment if name == ACCOMPANIMENT else (name,))}


def _target_tensor(sources: dict[str, np.ndarray], targets: tuple[str, ...], layout: StemLayout) -> torch.Tensor:
    """Channels-first sources -> target ``(nb_channels, nb_samples)`` or ``(nb_targets, nb_channels, nb_samples)``."""
    stacked = []
    for name in targets:
        if name == ACCOMPANIMENT and name not in layout.sources:
            first, *rest = layout.accompaniment
            audio = sources[first] + sources[rest[0]]  # a new array: the sources stay as read
            for source in rest[1:]:
                audio += sources[source]
        else:
            audio = sources[name]
        stacked.append(audio)
    return torch.from_numpy(np.ascontiguousarray(stacked[0]) if len(stacked) == 1 else np.stack(stacked))
