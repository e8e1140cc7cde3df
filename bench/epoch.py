"""One training epoch end to end (data loading + compute): ours vs Open-Unmix's recipe.

- ours: :class:`melunmix.datasets.TrainDataset` (soundfile partial reads of WAV stems,
  Open-Unmix augmentation) -> DataLoader -> :class:`melunmix.dsp.features.STFT` (centred, as
  our training) -> :class:`melunmix.models.networks.OpenUnmix`;
- reference: Open-Unmix's ``MUSDBDataset`` training recipe re-created on musdb's reader
  (``musdb.DB(root, is_wav=True)``; per item, every source from a random track with
  ``chunk_start`` / ``chunk_duration`` set, read through ffmpeg, random gain in
  [0.25, 1.25] and channel swap with torch's generator, mixture = sum; openunmix's
  ``data`` module itself is not imported) -> DataLoader ->
  ``openunmix.transforms.TorchSTFT`` (``center=False``, its train script's default) +
  ``ComplexNorm`` -> ``openunmix.model.OpenUnmix`` with our initial weights.

Both train the same configuration (hidden 512, 6 s, batch 16, n_fft 4096, hop 1024,
stereo 44.1 kHz, Adam 1e-3) on the same generated dataset with the same DataLoader
settings (``--workers``, default 0: Open-Unmix's train script uses no loader workers on
CPU). The validation pass is not timed (it reads whole tracks once per epoch and does
not depend on the sampler).

Scaling. A poster epoch on MUSDB18 is 86 training tracks x 64 excerpts = 5504 items =
344 batches. Here an epoch is ``--tracks`` x ``--samples-per-track`` items (default
4 x 8 = 32 items = 2 batches). Its time grows linearly with the number of batches, so
batches per second is the comparable figure; the projected poster epoch is 344 batches
divided by it. The time spent waiting for the DataLoader's next batch is reported
separately: it is the loading cost (with ``--workers 0`` loading and compute do not
overlap).

Usage::

    .venv/bin/python bench/epoch.py             # ~4 min on 2 cores
    .venv/bin/python bench/epoch.py --quick     # hidden 64, 2 batches of 4
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

import generated
import harness
import reference

TARGET = ">= 2.0"
POSTER_BATCHES = 86 * 64 // 16


class MusdbRecipeDataset(Dataset):
    """Open-Unmix's musdb training items: random-track sources read by musdb (ffmpeg).

    Parameters
    ----------
    root : path
        MUSDB18-format WAV root (``is_wav=True``); its ``setup.yaml`` (if any) gives the split.
    target : str
        Source returned as the target.
    seq_dur : float
        Excerpt length in seconds.
    samples_per_track : int
        Items per track and epoch.
    seed : int
        Seed of python's ``random`` (track choice and chunk start, as Open-Unmix seeds it).
    """

    def __init__(self, root, target: str = "vocals", seq_dur: float = 6.0, samples_per_track: int = 64,
                 seed: int = 42):
        import musdb

        setup = "setup.yaml" if (root / "setup.yaml").is_file() else None
        self.mus = musdb.DB(root=str(root), setup_file=setup, is_wav=True, subsets="train", split="train")
        if not self.mus.tracks:
            raise ValueError(f"musdb found no training tracks under {root}")
        self.sources = list(self.mus.setup["sources"])
        self.target = target
        self.seq_dur = float(seq_dur)
        self.samples_per_track = int(samples_per_track)
        random.seed(seed)

    def __len__(self) -> int:
        return len(self.mus.tracks) * self.samples_per_track

    def __getitem__(self, index: int):
        stems = []
        for source in self.sources:
            track = random.choice(self.mus.tracks)
            track.chunk_duration = self.seq_dur
            track.chunk_start = random.uniform(0, track.duration - self.seq_dur)
            audio = torch.as_tensor(track.sources[source].audio.T, dtype=torch.float32)
            audio = audio * (0.25 + torch.rand(1) * 1.0)  # gain in [0.25, 1.25]
            if audio.shape[0] == 2 and torch.rand(1) < 0.5:  # channel swap, p = 0.5
                audio = torch.flip(audio, [0])
            stems.append(audio)
        stems = torch.stack(stems)
        return stems.sum(0), stems[self.sources.index(self.target)]


def train_epoch(model, spectrogram, optimizer, loader, device: str, max_batches: int | None = None):
    """One pass; returns (batches, seconds waiting for data, seconds computing)."""
    model.train()
    nb_batches, wait, compute = 0, 0.0, 0.0
    iterator = iter(loader)
    while max_batches is None or nb_batches < max_batches:
        start = time.perf_counter()
        try:
            mixture, target = next(iterator)
        except StopIteration:
            break
        loaded = time.perf_counter()
        mixture, target = mixture.to(device), target.to(device)
        X, Y = spectrogram(mixture), spectrogram(target)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(X), Y)
        loss.backward()
        optimizer.step()
        loss.item()
        nb_batches += 1
        wait += loaded - start
        compute += time.perf_counter() - loaded
    return nb_batches, wait, compute


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=4, help="generated training tracks")
    parser.add_argument("--samples-per-track", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per generated song")
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--seq-dur", type=float, default=6.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers, both sides")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    harness.add_common_args(parser, reps=2, warmup=1)
    args = parser.parse_args(argv)
    nb_reps, nb_warmup = harness.resolve_counts(args, reps=2, warmup=1, quick_reps=1)
    if args.quick:
        args.tracks, args.samples_per_track, args.hidden, args.batch, args.duration = 2, 4, 64, 4, 15.0
    device = args.device or harness.default_device()

    from melunmix import datasets
    from melunmix.dsp import features
    from melunmix.models import networks as models

    oum = reference.import_openunmix()
    root = generated.generated_root(args.tracks + 1, 1, 1, args.duration)
    tracks = datasets.find_tracks(root, "train", split="train")
    ours_set = datasets.TrainDataset(tracks, targets=["vocals"], seq_dur=args.seq_dur,
                                     samples_per_track=args.samples_per_track, seed=42, progress=False)
    ref_set = MusdbRecipeDataset(root, "vocals", args.seq_dur, args.samples_per_track, seed=42)
    nb_items = len(ours_set)
    nb_batches = nb_items // args.batch + (nb_items % args.batch > 0)

    rate = float(ours_set.rate)
    max_bin = features.bandwidth_to_max_bin(rate, 4096, 16000.0)
    torch.manual_seed(0)
    ours = models.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=args.hidden, max_bin=max_bin,
                            sample_rate=rate).to(device)
    ref = reference.reference_model(oum, ours.cpu()).to(device)
    ours.to(device)
    stft = features.STFT(4096, 1024).to(device)
    ref_stft = oum.transforms.TorchSTFT(n_fft=4096, n_hop=1024, center=False).to(device)
    ref_norm = oum.transforms.ComplexNorm(mono=False)
    ours_opt = torch.optim.Adam(ours.parameters(), lr=1e-3, weight_decay=1e-5)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-3, weight_decay=1e-5)
    loader_kwargs = dict(batch_size=args.batch, shuffle=True, num_workers=args.workers,
                         pin_memory=device.startswith("cuda"))
    epochs = {"ours": 0, "reference": 0}

    def ours_loader():
        epochs["ours"] += 1
        ours_set.set_epoch(epochs["ours"])
        return DataLoader(ours_set, generator=torch.Generator().manual_seed(epochs["ours"]), **loader_kwargs)

    def ref_loader():
        return DataLoader(ref_set, **loader_kwargs)

    phases: dict[str, list] = {"ours": [], "reference": []}

    def ours_epoch(max_batches=None):
        phases["ours"].append(train_epoch(ours, lambda x: features.magnitude(stft(x)), ours_opt,
                                          ours_loader(), device, max_batches))
        harness.synchronize(device)

    def ref_epoch(max_batches=None):
        phases["reference"].append(train_epoch(ref, lambda x: ref_norm(ref_stft(x)), ref_opt,
                                               ref_loader(), device, max_batches))
        harness.synchronize(device)

    print(harness.machine_line(device))
    print(f"openunmix {oum.version}; data: {root} ({len(tracks)} training tracks of {args.duration:g} s, "
          f"{ours_set.rate} Hz stereo WAV)")
    print(f"epoch: {len(tracks)} tracks x {args.samples_per_track} samples per track = {nb_items} items = "
          f"{nb_batches} batches of {args.batch}; {args.seq_dur:g} s excerpts, hidden {args.hidden}, "
          f"n_fft 4096, hop 1024, DataLoader workers {args.workers} (both)")
    print(f"scaling: a poster epoch (86 tracks x 64) is {POSTER_BATCHES} batches, "
          f"{POSTER_BATCHES / nb_batches:.0f} times this one")
    print(f"warm-up: {nb_warmup} batch(es) per side; then {nb_reps} timed epoch(s) per side, interleaved")

    for _ in range(nb_warmup):
        ours_epoch(max_batches=1)
        ref_epoch(max_batches=1)
    for record in phases.values():
        record.clear()  # the warm-up batches are not part of the figures
    times = harness.repeat({"ours": ours_epoch, "reference": ref_epoch}, nb_reps, 0)

    print()
    waits, computes = {}, {}
    for name in ("ours", "reference"):
        print(harness.summary_line(f"{name}: epoch", times[name], "s"))
        waits[name] = harness.median([p[1] for p in phases[name]])
        computes[name] = harness.median([p[2] for p in phases[name]])
        print(f"    of which waiting for data {waits[name]:.2f} s ({1e3 * waits[name] / nb_items:.1f} ms per item), "
              f"compute {computes[name]:.2f} s (medians); {nb_batches / harness.median(times[name]):.4f} "
              f"batches/s; projected poster epoch "
              f"{POSTER_BATCHES * harness.median(times[name]) / nb_batches / 60:.0f} min")
    ours_t, ref_t = harness.median(times["ours"]), harness.median(times["reference"])
    speedup = ref_t / ours_t
    load_speedup = waits["reference"] / max(waits["ours"], 1e-9)
    print(f"speed-up ours vs reference: {speedup:.2f}x end to end (fastest epochs "
          f"{min(times['reference']) / min(times['ours']):.2f}x), {load_speedup:.0f}x for the data loading")
    compute_share = computes["reference"] / ref_t
    print(f"the reference spends {100 * compute_share:.0f} % of its epoch computing: with equal compute an "
          f"end-to-end speed-up cannot exceed 1 / {compute_share:.2f} = {1 / compute_share:.2f}x")
    print(f"load average after: {harness.load_average()}")

    command = harness.command_line("epoch.py", argv)
    note = (f"{nb_batches} batches of {args.batch} ({POSTER_BATCHES} in a poster epoch); "
            f"{nb_batches / ours_t:.3f} vs {nb_batches / ref_t:.3f} batches/s; data loading "
            f"{waits['ours']:.2f} s vs {waits['reference']:.1f} s per epoch ({load_speedup:.0f}x); the reference "
            f"computes {100 * compute_share:.0f} % of its epoch")
    harness.emit([
        harness.Figure("epoch", f"training epoch end to end, s ({device})", f"{ours_t:.1f}", f"{ref_t:.1f}",
                       speedup, TARGET, harness.check_target(speedup, TARGET), command,
                       "ratio = reference/ours (speed-up); " + note),
    ], args.json_out)


if __name__ == "__main__":
    main()
