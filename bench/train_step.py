"""Seconds per training step: our OpenUnmix vs Open-Unmix 1.3.0's, and MelUnmix's overhead.

One step is what both training loops do per batch: STFT and magnitude of the mixture and
of the target waveforms, the model's forward pass, the MSE loss, backward, Adam step.

- ours: :class:`melunmix.dsp.features.STFT` + :func:`melunmix.dsp.features.magnitude`,
  :class:`melunmix.models.networks.OpenUnmix` (and :class:`melunmix.models.networks.MelUnmix`);
- reference: ``openunmix.transforms.TorchSTFT`` + ``ComplexNorm``,
  ``openunmix.model.OpenUnmix``, with our model's initial weights copied in.

Both get the same random waveforms, the same input statistics (mean/std per bin of the
mono magnitude), Adam (lr 1e-3, weight decay 1e-5) and the poster's configuration by
default: hidden 512, 6 s excerpts, batch 16, n_fft 4096, hop 1024, stereo 44.1 kHz,
16 kHz bandwidth (1487 bins into the network), 128 mel bands for MelUnmix.

Both STFTs are centred (``center=True``, what our training uses) so that both models see
the same number of frames; ``--recipe-stft`` gives the reference its own training
recipe's ``center=False`` instead (4 frames fewer per 6 s excerpt, about 1.5 % less work).

Usage::

    .venv/bin/python bench/train_step.py            # poster config, ~2-3 min on 2 cores
    .venv/bin/python bench/train_step.py --quick    # small sizes, seconds
    .venv/bin/python bench/train_step.py --profile  # plus torch.profiler's top operators
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

import harness
import reference

TARGET = "<= 1.0"


def poster_sizes(args: argparse.Namespace) -> dict:
    if args.quick:
        return dict(hidden=128, seq_dur=2.0, batch=4, n_fft=args.n_fft, n_hop=args.n_hop, n_mels=64,
                    rate=args.rate, bandwidth=args.bandwidth)
    return dict(hidden=args.hidden, seq_dur=args.seq_dur, batch=args.batch, n_fft=args.n_fft,
                n_hop=args.n_hop, n_mels=args.n_mels, rate=args.rate, bandwidth=args.bandwidth)


def make_batch(batch: int, nb_samples: int, device: str, seed: int = 0):
    """Mixture and target waveforms ``(batch, 2, nb_samples)``: noise at speech-like level."""
    gen = torch.Generator().manual_seed(seed)
    target = 0.1 * torch.randn(batch, 2, nb_samples, generator=gen)
    mixture = target + 0.1 * torch.randn(batch, 2, nb_samples, generator=gen)
    return mixture.to(device), target.to(device)


def input_statistics(mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per bin of the mono magnitude ``(batch, channels, bins, frames)``."""
    mono = mag.mean(1).transpose(1, 2).reshape(-1, mag.shape[2]).double()
    std = mono.std(0)
    return mono.mean(0), torch.maximum(std, 1e-4 * std.max())


def make_step(model, spectrogram, optimizer, mixture, target):
    """One training step as both recipes run it; returns the loss (which synchronises)."""
    def step():
        X, Y = spectrogram(mixture), spectrogram(target)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(X), Y)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def build(sizes: dict, device: str, recipe_stft: bool):
    """Our two models, the reference, their spectrogram functions and optimizers."""
    from melunmix.dsp import features
    from melunmix.models import networks as models

    oum = reference.import_openunmix()
    rate = float(sizes["rate"])
    nb_samples = int(round(sizes["seq_dur"] * rate))
    nb_bins = sizes["n_fft"] // 2 + 1
    max_bin = features.bandwidth_to_max_bin(rate, sizes["n_fft"], min(float(sizes["bandwidth"]), rate / 2))
    mixture, target = make_batch(sizes["batch"], nb_samples, device)

    stft = features.STFT(sizes["n_fft"], sizes["n_hop"]).to(device)
    ours_spec = lambda x: features.magnitude(stft(x))  # noqa: E731
    ref_stft = oum.transforms.TorchSTFT(n_fft=sizes["n_fft"], n_hop=sizes["n_hop"],
                                        center=not recipe_stft).to(device)
    ref_norm = oum.transforms.ComplexNorm(mono=False)
    ref_spec = lambda x: ref_norm(ref_stft(x))  # noqa: E731

    with torch.no_grad():
        X = ours_spec(mixture)
    mean, std = input_statistics(X.cpu())
    torch.manual_seed(0)
    common = dict(nb_bins=nb_bins, nb_channels=2, hidden_size=sizes["hidden"], nb_layers=3,
                  max_bin=max_bin, input_mean=mean, input_scale=std, sample_rate=rate,
                  n_fft=sizes["n_fft"], n_hop=sizes["n_hop"])
    ours = models.OpenUnmix(**common).to(device)
    ref = reference.reference_model(oum, ours.cpu()).to(device)
    ours.to(device)
    # branch statistics from the very transform MelUnmix applies (branch_transform)
    transform = features.branch_transform("mel", rate, sizes["n_fft"], n_mels=sizes["n_mels"])
    with torch.no_grad():
        feats = transform(X.cpu()).transpose(-1, -2).reshape(-1, sizes["n_mels"]).double()
    mel = models.MelUnmix(**common, n_mels=sizes["n_mels"], feature="mel",
                          mel_mean=feats.mean(0), mel_scale=feats.std(0).clamp_min(1e-4)).to(device)
    difference = reference.check_same_outputs(ours, ref, X)

    def adam(model):
        return torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)

    for model in (ours, ref, mel):
        model.train()
    steps = {
        "ours OpenUnmix": make_step(ours, ours_spec, adam(ours), mixture, target),
        "reference openunmix.OpenUnmix": make_step(ref, ref_spec, adam(ref), mixture, target),
        "ours MelUnmix": make_step(mel, ours_spec, adam(mel), mixture, target),
    }
    info = dict(oum=oum, nb_samples=nb_samples, max_bin=max_bin, difference=difference,
                frames_ours=X.shape[-1], frames_ref=ref_spec(mixture[:1]).shape[-1],
                nb_params=sum(p.numel() for p in ours.parameters()),
                nb_params_mel=sum(p.numel() for p in mel.parameters()))
    return steps, info


def profile(steps: dict, nb_rows: int = 15) -> None:
    """torch.profiler's operators by self CPU time for one step of each model."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    for name, step in steps.items():
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        with torch_profile(activities=activities) as prof:
            step()
        print(f"\nprofile of one step, {name}:")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=nb_rows))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--seq-dur", type=float, default=6.0, help="seconds per excerpt")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n-fft", type=int, default=4096)
    parser.add_argument("--n-hop", type=int, default=1024)
    parser.add_argument("--n-mels", type=int, default=128, help="mel bands of MelUnmix")
    parser.add_argument("--rate", type=float, default=44100.0, help="sample rate (Hz) of the excerpts")
    parser.add_argument("--bandwidth", type=float, default=16000.0,
                        help="highest frequency (Hz) fed to the network (at most half the rate)")
    parser.add_argument("--recipe-stft", action="store_true",
                        help="reference STFT with center=False as in its train script")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    harness.add_common_args(parser, reps=3, warmup=1)
    args = parser.parse_args(argv)
    nb_reps, nb_warmup = harness.resolve_counts(args, reps=3, warmup=1, quick_reps=3)
    device = args.device or harness.default_device()
    sizes = poster_sizes(args)

    steps, info = build(sizes, device, args.recipe_stft)
    print(harness.machine_line(device))
    print(f"openunmix {info['oum'].version}; sizes: hidden {sizes['hidden']}, {sizes['seq_dur']:g} s excerpts "
          f"({info['nb_samples']} samples), batch {sizes['batch']}, n_fft {sizes['n_fft']}, hop {sizes['n_hop']}, "
          f"stereo {sizes['rate'] / 1000:g} kHz, {info['max_bin']} bins into the network, {sizes['n_mels']} mel bands; frames per "
          f"excerpt: ours {info['frames_ours']}, reference {info['frames_ref']}")
    print(f"parameters: OpenUnmix {info['nb_params']:,}, MelUnmix {info['nb_params_mel']:,}; "
          f"same weights: largest relative output difference ours vs reference {info['difference']:.1e}")
    print(f"{nb_warmup} warm-up step(s), then {nb_reps} timed steps per model, interleaved")

    cpu: dict = {}
    times = harness.repeat(steps, nb_reps, nb_warmup, cpu=cpu)
    print()
    for name, values in times.items():
        print(harness.summary_line(name, values, "s/step"))
    ours_t = harness.median(times["ours OpenUnmix"])
    ref_t = harness.median(times["reference openunmix.OpenUnmix"])
    mel_t = harness.median(times["ours MelUnmix"])
    ratio = ours_t / ref_t
    paired = harness.paired_ratios(times["ours OpenUnmix"], times["reference openunmix.OpenUnmix"])
    best = harness.best_ratio(times["ours OpenUnmix"], times["reference openunmix.OpenUnmix"])
    print(f"ratio ours / reference: {ratio:.3f} (medians); {best:.3f} (fastest repetitions); per "
          f"interleaved pair: median {harness.median(paired):.3f}, range {min(paired):.3f} - {max(paired):.3f}")
    cpu_ratio = harness.median(cpu["ours OpenUnmix"]) / harness.median(cpu["reference openunmix.OpenUnmix"])
    print(f"CPU seconds of this process per step (medians): ours {harness.median(cpu['ours OpenUnmix']):.3f}, "
          f"reference {harness.median(cpu['reference openunmix.OpenUnmix']):.3f}, ratio {cpu_ratio:.3f}")
    print(f"MelUnmix overhead over our OpenUnmix: {100 * (mel_t / ours_t - 1):+.1f} % per step")
    print(f"load average after: {harness.load_average()}")

    if args.profile:
        profile(steps)

    command = harness.command_line("train_step.py", argv)
    harness.emit([
        harness.Figure("train_step", f"training step, s/step ({device})", f"{ours_t:.3f}", f"{ref_t:.3f}",
                       ratio, TARGET, harness.check_target(ratio, TARGET), command,
                       f"ratio of medians ours/reference; fastest repetitions {best:.2f}, CPU time {cpu_ratio:.2f}; "
                       f"{nb_reps} steps each after {nb_warmup} warm-up"),
        harness.Figure("train_step", f"MelUnmix training step, s/step ({device})", f"{mel_t:.3f}",
                       f"{ours_t:.3f} (our OpenUnmix)", mel_t / ours_t, "", None, command,
                       f"MelUnmix overhead {100 * (mel_t / ours_t - 1):+.1f} % per step over our OpenUnmix "
                       f"({sizes['n_mels']} mel bands; its second BLSTM has the baseline's size)"),
    ], args.json_out)


if __name__ == "__main__":
    main()
