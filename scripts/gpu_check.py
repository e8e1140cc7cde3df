"""The project's GPU check: in one run, whether the CUDA paths work and how fast they are.

Run it the first time a CUDA machine is at hand (``make gpu-check``: the set-up, then this
script; about 5 minutes on a recent GPU, at most 10):

1. the CUDA-only tests (the ones that skip on a CPU: models, Wiener filter, separation and
   devices on CUDA against the CPU);
2. a training step at the poster's configuration (hidden 512, 6 s excerpts, batches of
   16, n_fft 4096 / hop 1024, stereo 44.1 kHz, 1487 bins), baseline and proposed model,
   seconds per step;
3. a full-length song (3 minutes, stereo 44.1 kHz, generated) separated by a
   poster-sized baseline (untrained: the time does not depend on the weights) with the
   Wiener filter, then scored with BSS Eval v4 (``melunmix.dsp.bsseval``, which runs on the
   CPU);

and prints one table (``--json-out`` also writes it as JSON). Each stage has a time limit
and a failing stage is reported in the table, not hidden: the script exits 1 when a test
or a stage failed.

``--device cpu --quick`` is the CPU form, which the tests run: tiny sizes, the same
stages, seconds.

    .venv/bin/python scripts/gpu_check.py [--device cuda|cpu] [--quick] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Test files holding the CUDA-only tests (they skip without CUDA).
CUDA_TESTS = ("tests/base/test_devices.py", "tests/models/test_networks.py", "tests/dsp/test_wiener.py", "tests/separation/test_separate.py")
POSTER = {"hidden": 512, "seq_dur": 6.0, "batch": 16, "n_fft": 4096, "n_hop": 1024, "rate": 44100,
          "bandwidth": 16000.0, "n_mels": 128, "song_s": 180.0}
QUICK = {"hidden": 32, "seq_dur": 1.0, "batch": 2, "n_fft": 1024, "n_hop": 256, "rate": 16000,
         "bandwidth": 6000.0, "n_mels": 32, "song_s": 10.0}


def run_cuda_tests(timeout: float) -> dict:
    """pytest on the CUDA-only tests; counts of passed, skipped and failed."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda or gpu or CUDA",
               *CUDA_TESTS]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timed out", "seconds": timeout}
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-200:]
    counts = {word: 0 for word in ("passed", "skipped", "failed", "error")}
    for part in tail.replace(",", " ").split(" in ")[0].split("  "):
        bits = part.split()
        for number, word in zip(bits, bits[1:]):
            if number.isdigit() and word.rstrip("s") in ("passed", "skipped", "failed", "error"):
                counts[word if word in counts else word.rstrip("s")] += int(number)
    status = "ok" if done.returncode in (0, 5) and not counts["failed"] and not counts["error"] else "failed"
    return {"status": status, "seconds": round(time.perf_counter() - start, 1), "summary": tail, **counts}


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training_step(sizes: dict, device, reps: int) -> dict:
    """Seconds per training step (STFT, magnitude, forward, MSE, backward, Adam) of the
    baseline and the proposed model at ``sizes``, on ``device``."""
    import torch
    import torch.nn.functional as F

    from melunmix.dsp import features
    from melunmix.models import networks as models

    torch.manual_seed(0)
    nb_samples = int(sizes["seq_dur"] * sizes["rate"])
    mixture = torch.randn(sizes["batch"], 2, nb_samples, device=device) * 0.1
    target = mixture * 0.5
    stft = features.STFT(sizes["n_fft"], sizes["n_hop"]).to(device)
    nb_bins = sizes["n_fft"] // 2 + 1
    max_bin = features.bandwidth_to_max_bin(sizes["rate"], sizes["n_fft"], sizes["bandwidth"])
    common = dict(nb_bins=nb_bins, nb_channels=2, hidden_size=sizes["hidden"], nb_layers=3, max_bin=max_bin,
                  sample_rate=float(sizes["rate"]), n_fft=sizes["n_fft"], n_hop=sizes["n_hop"])
    out = {}
    for name, model in (("baseline", models.OpenUnmix(**common)),
                        ("proposed", models.MelUnmix(**common, n_mels=sizes["n_mels"], feature="mel"))):
        model = model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            X = features.magnitude(stft(mixture))
            Y = features.magnitude(stft(target))
            optimizer.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(X), Y)
            loss.backward()
            optimizer.step()

        step()  # warm-up (cuDNN picks its kernels)
        _synchronize(device)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            step()
            _synchronize(device)
            times.append(time.perf_counter() - start)
        out[name] = round(sorted(times)[len(times) // 2], 4)
    return out


def time_separation_and_scoring(sizes: dict, device, work: Path) -> dict:
    """A generated song of ``sizes["song_s"]`` seconds: separated on ``device`` by an
    untrained baseline of the poster's size, then scored with BSS Eval v4 (CPU)."""
    import soundfile as sf
    import torch

    from melunmix.dsp import features
    from melunmix.models import networks as models
    from melunmix.dsp.bsseval import score_track
    from melunmix.separation.separate import separate
    from melunmix.synth import make_dataset

    root = make_dataset(work / "song", nb_train=1, nb_valid=0, nb_test=1, duration=sizes["song_s"], seed=0,
                        sample_rate=sizes["rate"], progress=False)
    song = next((root / "test").iterdir())
    mixture, rate = sf.read(song / "mixture.wav", dtype="float32", always_2d=True)
    vocals = sf.read(song / "vocals.wav", dtype="float32", always_2d=True)[0]
    torch.manual_seed(0)
    nb_bins = sizes["n_fft"] // 2 + 1
    model = models.OpenUnmix(nb_bins=nb_bins, nb_channels=2, hidden_size=sizes["hidden"], nb_layers=3,
                             max_bin=features.bandwidth_to_max_bin(sizes["rate"], sizes["n_fft"], sizes["bandwidth"]),
                             sample_rate=float(rate), n_fft=sizes["n_fft"], n_hop=sizes["n_hop"]).eval()
    separate(mixture[: rate].T, rate, {"vocals": model}, device=device)  # warm-up
    _synchronize(device)
    start = time.perf_counter()
    estimates = separate(mixture.T, rate, {"vocals": model}, device=device)
    _synchronize(device)
    separation = time.perf_counter() - start
    start = time.perf_counter()
    score_track({"vocals": vocals, "accompaniment": mixture - vocals},
                {"vocals": estimates["vocals"].T, "accompaniment": estimates["accompaniment"].T}, rate)
    scoring = time.perf_counter() - start
    return {"song_s": sizes["song_s"], "separation_s": round(separation, 2), "scoring_s": round(scoring, 2)}


def _stage(name: str, function, *args) -> dict:
    start = time.perf_counter()
    try:
        return {"status": "ok", **function(*args), "seconds": round(time.perf_counter() - start, 1)}
    except Exception as err:  # reported in the table: the check goes on to the next stage
        return {"status": "failed", "error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}",
                "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the CPU form, seconds")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the CUDA-only tests")
    parser.add_argument("--reps", type=int, default=5, help="timed training steps per model (default 5)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the table as JSON")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "gpu-check", help="scratch folder")
    args = parser.parse_args(argv)

    import torch

    from melunmix.base.devices import resolve_device

    device = resolve_device(args.device or "auto")
    sizes = QUICK if args.quick else POSTER
    args.work.mkdir(parents=True, exist_ok=True)
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "cuda": torch.version.cuda, "sizes": "quick" if args.quick else "poster",
    }
    report["cuda_tests"] = {"status": "skipped"} if args.skip_tests else run_cuda_tests(timeout=300)
    report["training_step"] = _stage("training step", time_training_step, sizes, device, max(1, args.reps))
    report["separation"] = _stage("separation", time_separation_and_scoring, sizes, device, args.work)

    tests, step, sep = report["cuda_tests"], report["training_step"], report["separation"]
    rows = [
        ("device", "-", f"{report['device']}; torch {report['torch']}, CUDA {report['cuda'] or '-'}"),
        ("CUDA-only tests", tests["status"],
         "" if "passed" not in tests else f"{tests['passed']} passed, {tests['skipped']} skipped, "
                                          f"{tests['failed'] + tests['error']} failed"),
        ("training step, baseline", step["status"], f"{step['baseline']:.3f} s/step" if "baseline" in step else
         step.get("error", "")),
        ("training step, proposed", step["status"], f"{step['proposed']:.3f} s/step" if "proposed" in step else ""),
        (f"separation of a {sizes['song_s']:g} s song", sep["status"],
         f"{sep['separation_s']:.2f} s" if "separation_s" in sep else sep.get("error", "")),
        ("BSS Eval v4 of that song (CPU)", sep["status"], f"{sep['scoring_s']:.2f} s" if "scoring_s" in sep else ""),
    ]
    print(f"\nmelunmix GPU check ({report['sizes']} sizes)\n")
    print("| what | status | figure |\n|---|---|---|")
    for what, status, figure in rows:
        print(f"| {what} | {status} | {figure} |")
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    failed = [name for name in ("cuda_tests", "training_step", "separation") if report[name]["status"] not in
              ("ok", "skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
