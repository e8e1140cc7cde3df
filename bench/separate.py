"""Separation speed (real-time factor) ours vs Open-Unmix's Separator; peak memory on 10 minutes.

Both separators get the same song, a vocals model with the same weights (ours built with
the poster's sizes, copied into ``openunmix.model.OpenUnmix``), Wiener EM with one
iteration, the residual accompaniment and Wiener blocks of 300 frames:

- ours: :class:`melunmix.separation.separate.Separator` (model over chunks of 4096 frames with 256
  frames of context, double-precision Wiener blocks, streamed inverse STFT);
- reference: ``openunmix.model.Separator`` (torch filterbank; model over the whole song).

Real-time factor = seconds of processing / seconds of audio (lower is faster). The songs
are a generated 30 s test song and that song repeated to 3 and 10 minutes (stereo,
44.1 kHz). Peak memory: :func:`melunmix.separation.separate.separate` on the 10-minute song in a
fresh child process, whose ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is read at
the end (torch, the model and the input/output audio included).

Usage::

    .venv/bin/python bench/separate.py                   # ~4 min on 2 cores
    .venv/bin/python bench/separate.py --quick           # 10 s song, small model, 1 min RSS song
    .venv/bin/python bench/separate.py --reference-rss   # also the reference's peak RSS (10 min)
    .venv/bin/python bench/separate.py --profile         # plus torch.profiler's top operators
    .venv/bin/python bench/separate.py --stages          # plus Wiener filter / inverse STFT alone
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import generated
import harness
import reference

RTF_TARGET = "<= 1.0"
RSS_LIMIT_MB = 2000.0
RATE = 44100


def song(root: Path, seconds: float) -> np.ndarray:
    """The first test song's mixture, cut or repeated to ``seconds``: (2, nb_samples) float32."""
    import soundfile as sf

    path = sorted((root / "test").glob("*/mixture.wav"))[0]
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    if rate != RATE:
        raise ValueError(f"{path} is at {rate} Hz; the benchmark expects {RATE} Hz")
    nb_samples = int(round(seconds * RATE))
    reps = -(-nb_samples // audio.shape[0])
    return np.ascontiguousarray(np.tile(audio.T, (1, reps))[:, :nb_samples])


def build_model(hidden: int, audio: np.ndarray):
    """Our OpenUnmix (eval mode) with input statistics of ``audio`` and fixed random weights."""
    from melunmix.dsp import features
    from melunmix.models import networks as models

    with torch.no_grad():
        mag = features.magnitude(features.STFT(4096, 1024)(torch.from_numpy(audio)))
    mono = mag.mean(0).T.double()
    std = mono.std(0)
    torch.manual_seed(0)
    model = models.OpenUnmix(nb_bins=2049, nb_channels=2, hidden_size=hidden,
                             max_bin=features.bandwidth_to_max_bin(RATE, 4096, 16000.0),
                             input_mean=mono.mean(0), input_scale=torch.maximum(std, 1e-4 * std.max()),
                             sample_rate=float(RATE))
    return model.eval()


def difference_db(estimate: np.ndarray, ref: np.ndarray) -> float:
    """Energy of the difference relative to the reference's estimate, in dB."""
    num = float(np.sum((estimate.astype(np.float64) - ref) ** 2))
    den = float(np.sum(ref.astype(np.float64) ** 2))
    return 10 * np.log10(max(num, 1e-30) / max(den, 1e-30))


def stage_times(oum, audio: np.ndarray, nb_runs: int = 5) -> None:
    """Where the two separators differ outside the shared model: Wiener filter and inverse STFT.

    Times (fastest of ``nb_runs``, CPU seconds) for one 300-frame Wiener block with two
    sources (vocals + residual) as each separator calls it, and for the inverse STFT of the
    two stereo estimates of ``audio``, on the same random-magnitude inputs.
    """
    from melunmix.dsp.features import ISTFT, STFT
    from melunmix.dsp.wiener import wiener

    def fastest(fn) -> float:
        times = []
        for _ in range(nb_runs):
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        return min(times)

    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        X = STFT(4096, 1024)(torch.from_numpy(audio))                # (2, bins, frames)
        block = X[..., :300].permute(2, 1, 0).contiguous()          # (frames, bins, channels)
        vocals = block.abs()[..., None] * torch.rand(block.shape + (1,), generator=gen)
        rows = [
            ("Wiener block, ours as Separator calls it (complex128)",
             fastest(lambda: wiener(vocals.double(), block.to(torch.complex128), 1, residual=True))),
            ("Wiener block, ours in complex64",
             fastest(lambda: wiener(vocals, block, 1, residual=True))),
            ("Wiener block, reference filtering.wiener (float32)",
             fastest(lambda: oum.filtering.wiener(vocals, torch.view_as_real(block), 1, residual=True))),
        ]
        estimates = torch.stack([X, X])                               # (sources, channels, bins, frames)
        ref_istft = oum.transforms.TorchISTFT(n_fft=4096, n_hop=1024, center=True)
        rows += [
            ("inverse STFT of 2 stereo estimates, ours (ISTFT)",
             fastest(lambda: ISTFT(4096, 1024)(estimates, length=audio.shape[1]))),
            ("inverse STFT of 2 stereo estimates, reference (torch.istft)",
             fastest(lambda: ref_istft(torch.view_as_real(estimates), length=audio.shape[1]))),
        ]
    print(f"\nstages (fastest of {nb_runs}, CPU seconds; {audio.shape[1] / RATE:g} s song, "
          f"{X.shape[-1]} frames):")
    for label, seconds in rows:
        print(f"  {label:<62s} {seconds:7.3f} s")


def rss_child(args: argparse.Namespace) -> None:
    """Run in a fresh process: separate the long song with ours (or the reference), print JSON."""
    from melunmix.separation.separate import separate

    root = generated.generated_root(5, 1, 1, 30.0)
    audio = song(root, args.rss_child)
    model = build_model(args.hidden, audio[:, : 30 * RATE])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if args.child_reference:
        oum = reference.import_openunmix()
        sep = oum.model.Separator({"vocals": reference.reference_model(oum, model)}, niter=1, residual=True,
                                  wiener_win_len=300, sample_rate=float(RATE), n_fft=4096, n_hop=1024,
                                  nb_channels=2, filterbank="torch")
        sep.freeze()
        with torch.inference_mode():
            sep(torch.from_numpy(audio)[None])
    else:
        separate(audio, RATE, {"vocals": model}, niter=1, residual=True, wiener_win_len=300, device="cpu")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print("RSS-RESULT " + json.dumps({"peak_rss_mb": peak, "rss_before_mb": before, "seconds": seconds,
                                      "audio_seconds": audio.shape[1] / RATE, "vm_hwm_mb": vm_hwm_mb()}))


def vm_hwm_mb() -> float | None:
    """Peak RSS of this process image from /proc (Linux), None elsewhere.

    Unlike ``ru_maxrss``, which a child inherits from its parent's size at fork time,
    ``VmHWM`` starts afresh at exec: a cross-check that the figure is the child's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure_rss(seconds: float, hidden: int, reference_side: bool) -> dict:
    """Peak RSS of separating a ``seconds``-long song in a child process."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(seconds), "--hidden", str(hidden)]
    if reference_side:
        cmd.append("--child-reference")
    out = subprocess.run(cmd, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RSS-RESULT "):
            return json.loads(line[len("RSS-RESULT "):])
    raise RuntimeError(f"the RSS child process failed (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--short", type=float, default=30.0, help="seconds of the short song")
    parser.add_argument("--long", type=float, default=180.0, help="seconds of the long song")
    parser.add_argument("--long-reps", type=int, default=2, help="timed runs on the long song")
    parser.add_argument("--rss-seconds", type=float, default=600.0, help="song length of the peak-RSS run")
    parser.add_argument("--reference-rss", action="store_true", help="also measure the reference's peak RSS")
    parser.add_argument("--profile", action="store_true",
                        help="print torch.profiler's top operators for one run of each on the short song")
    parser.add_argument("--stages", action="store_true",
                        help="time the Wiener filter and inverse STFT of both sides separately")
    parser.add_argument("--rss-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-reference", action="store_true", help=argparse.SUPPRESS)
    harness.add_common_args(parser, reps=3, warmup=1)
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args)
        return
    nb_reps, nb_warmup = harness.resolve_counts(args, reps=3, warmup=1)
    if args.quick:
        args.hidden, args.short, args.long, args.long_reps, args.rss_seconds = 128, 10.0, 30.0, 1, 60.0
    device = harness.default_device()
    print(harness.machine_line(device))

    # Peak memory first, while this process is still small: a child's ru_maxrss starts from
    # the parent's resident size at fork time, so a big parent would mask the child's peak.
    print(f"peak RSS: separating a {args.rss_seconds:g} s song with melunmix.separation.separate.separate in a "
          "child process ...", flush=True)
    ours_rss = measure_rss(args.rss_seconds, args.hidden, reference_side=False)
    print(f"ours: peak RSS {ours_rss['peak_rss_mb']:.0f} MB (VmHWM {ours_rss['vm_hwm_mb']:.0f} MB; "
          f"{ours_rss['rss_before_mb']:.0f} MB before separating: torch, model, input), "
          f"{ours_rss['seconds']:.1f} s, RTF {ours_rss['seconds'] / ours_rss['audio_seconds']:.3f}")
    ref_text, rss_ratio = "not measured (--reference-rss)", None
    if args.reference_rss:
        ref_rss = measure_rss(args.rss_seconds, args.hidden, reference_side=True)
        print(f"reference (whole song through the model at once): peak RSS {ref_rss['peak_rss_mb']:.0f} MB, "
              f"{ref_rss['seconds']:.1f} s")
        ref_text, rss_ratio = f"{ref_rss['peak_rss_mb']:.0f}", ours_rss["peak_rss_mb"] / ref_rss["peak_rss_mb"]
    rss_met = ours_rss["peak_rss_mb"] < RSS_LIMIT_MB
    print(f"target peak RSS < {RSS_LIMIT_MB:.0f} MB: {'met' if rss_met else 'NOT met'}\n", flush=True)

    from melunmix.separation.separate import Separator

    oum = reference.import_openunmix()
    root = generated.generated_root(5, 1, 1, 30.0)
    short, long_ = song(root, args.short), song(root, args.long)
    model = build_model(args.hidden, short).to(device)
    ref = reference.reference_model(oum, model.cpu()).to(device).eval()
    model.to(device)
    ours_sep = Separator({"vocals": model}, niter=1, residual=True, wiener_win_len=300).to(device)
    ref_sep = oum.model.Separator({"vocals": ref}, niter=1, residual=True, wiener_win_len=300,
                                  sample_rate=float(RATE), n_fft=4096, n_hop=1024, nb_channels=2,
                                  filterbank="torch").to(device)
    ref_sep.freeze()
    outputs = {}

    def run(name, separator, audio):
        def call():
            with torch.inference_mode():
                outputs[name] = separator(torch.from_numpy(audio)[None].to(device)).cpu().numpy()[0]
            harness.synchronize(device)
        return call

    print(f"openunmix {oum.version}; model: OpenUnmix hidden {args.hidden}, n_fft 4096, hop 1024, 1487 bins "
          f"(16 kHz) into the network, same weights both sides; Wiener niter 1, residual, 300-frame blocks")
    print(f"songs: {args.short:g} s and {args.long:g} s stereo 44.1 kHz (a generated song, repeated); "
          f"{nb_warmup} warm-up + {nb_reps} runs on the short song, then {args.long_reps} on the long one")

    figures, command = [], harness.command_line("separate.py", argv)
    for audio, reps, warm in ((short, nb_reps, nb_warmup), (long_, args.long_reps, 0)):
        seconds = audio.shape[1] / RATE
        times = harness.repeat({"ours": run("ours", ours_sep, audio), "reference": run("reference", ref_sep, audio)},
                               reps, warm)
        rtf = {name: [t / seconds for t in values] for name, values in times.items()}
        print()
        for name in rtf:
            print(harness.summary_line(f"{seconds:g} s song, {name}: RTF", rtf[name], "x"))
        ratio = harness.median(rtf["ours"]) / harness.median(rtf["reference"])
        best = harness.best_ratio(rtf["ours"], rtf["reference"])
        agreement = difference_db(outputs["ours"][0], outputs["reference"][0])
        print(f"ratio ours / reference: {ratio:.3f} (medians), {best:.3f} (fastest runs); vocals estimates "
              f"differ by {agreement:.1f} dB relative to the reference's (float64 vs float32 Wiener filter, "
              "model chunking)")
        figures.append(harness.Figure(
            "separate", f"separation RTF, {harness.duration_label(seconds)} song ({device})",
            f"{harness.median(rtf['ours']):.3f}", f"{harness.median(rtf['reference']):.3f}", ratio, RTF_TARGET,
            harness.check_target(ratio, RTF_TARGET), command,
            f"ratio of medians ours/reference; fastest runs {best:.2f}; {reps} runs after {warm} warm-up; "
            f"estimates agree to {agreement:.0f} dB"))

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, separator in (("ours", ours_sep), ("reference", ref_sep)):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run(name, separator, short)()
            print(f"\nprofile of one separation of the {harness.duration_label(args.short)} song, {name}:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    if args.stages:
        stage_times(oum, short)

    print(f"load average after: {harness.load_average()}")
    figures.append(harness.Figure(
        "separate", f"peak RSS, {harness.duration_label(args.rss_seconds)} song, MB", f"{ours_rss['peak_rss_mb']:.0f}",
        ref_text, rss_ratio, f"< {RSS_LIMIT_MB:.0f} MB", rss_met, command,
        f"melunmix.separation.separate.separate on CPU in a child process (ru_maxrss; VmHWM {ours_rss['vm_hwm_mb']:.0f} MB); "
        f"ours RTF {ours_rss['seconds'] / ours_rss['audio_seconds']:.3f} on this song"))
    harness.emit(figures, args.json_out)


if __name__ == "__main__":
    main()
