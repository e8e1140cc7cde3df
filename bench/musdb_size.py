"""The poster profile's data path rehearsed at MUSDB18's size, stage by stage (issue 26).

MUSDB18 cannot be downloaded here, so the rehearsal makes a dataset with its counts and
song lengths: 150 generated songs, 100 under ``train/`` (14 of them the validation split,
listed in ``setup.yaml``) and 50 under ``test/``, each 2-7 minutes long (drawn per song,
mean about 4 minutes: about 10 hours, as MUSDB18). The songs are the built-in generator's
(:func:`melunmix.synth.arrange_song`, :func:`~melunmix.synth.render_song`); their number,
lengths and files are MUSDB18's: by default MUSDB18-HQ's layout (a folder of five 16-bit
WAVs per song), with ``--format stem.mp4`` MUSDB18's (five AAC streams at 256 kb/s in
musdb's order, as ``stempeg`` writes them; encoding 10 hours takes about 3 CPU hours here,
so the default measures that container on a sample instead: stage ``stem-sample``).

On it the poster profile (``lib/melunmix/profiles/poster.yaml``: 44.1 kHz, 6 s excerpts,
64 per song and epoch, batch 16, n_fft 4096 / hop 1024, hidden 512, 4 loader workers) runs
stage by stage, each stage in its own process so that its peak memory is its own:

===========  ==================================================================================
data         the dataset above, made once (resumable: finished songs are kept)
prepare      what training and scoring read: ``.stem.mp4`` songs decoded into the cache
             (16-bit WAV), WAV songs' mixtures checked (``prepare_tracks``)
stem-sample  (WAV rehearsal) the first ``--stem-songs`` test songs written as ``.stem.mp4`` and
             decoded into a cache of their own: seconds and MB per audio minute of each
stats        the scaler statistics over the 86 training songs (``prepare_data``)
loading      one whole poster epoch of training items (86 x 64 excerpts of 6 s, Open-Unmix's
             augmentation) through the profile's DataLoader, without a network
train        ``--steps`` optimiser steps of the baseline and of the proposed model (the
             trainer's own epoch loop and loader), then each one's validation loss over the 14
             whole validation songs
evaluate     the baseline after those steps: separation (Wiener niter 1) and BSS Eval v4
             scoring of the 50 whole test songs, ``--jobs`` processes
===========  ==================================================================================

Each stage appends one JSON line (wall and CPU seconds, peak RSS of the process and of its
children, disk after the stage) to ``<base>/stages.jsonl``; ``report`` prints the table
and the extrapolations: the decode cache and decoding for the whole dataset from the
sample, a poster epoch (344 steps and validation), the poster's 20 epochs and Open-Unmix's
recipe (up to 1000 epochs) from the measured steps.

Usage::

    .venv/bin/python bench/musdb_size.py run [--base DIR] [--steps 20]   # every stage, ~1 h here
    .venv/bin/python bench/musdb_size.py run --quick                    # 6 short songs, ~1.5 min
    .venv/bin/python bench/musdb_size.py report [--base DIR]            # the table again

``--base`` defaults to ``$MELUNMIX_BENCH_DATA/musdb-size`` (``--quick``: ``musdb-size-quick``).
The WAV rehearsal needs about 35 GB of disk (the dataset, 16-bit: 0.88 MB per second of song).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

#: MUSDB18's counts: 100 train songs (14 of them validation), 50 test songs.
MUSDB18_COUNTS = {"train": 86, "valid": 14, "test": 50}
#: Song lengths (seconds): drawn per song from a normal law clipped to 2-7 minutes; the mean
#: of 240 s gives MUSDB18's total of about 10 hours over 150 songs.
LENGTHS = (240.0, 60.0, (120.0, 420.0))
QUICK_COUNTS = {"train": 3, "valid": 1, "test": 2}
QUICK_LENGTHS = (14.0, 3.0, (8.0, 20.0))
SEED = 26
RATE = 44100
STAGES = ("data", "prepare", "stem-sample", "stats", "loading", "train", "evaluate")
MODELS = ("openunmix", "melunmix")


# --------------------------------------------------------------------------- the plan
def song_plan(counts: dict[str, int], lengths=LENGTHS, seed: int = SEED) -> list[tuple[str, int, float]]:
    """``(split, index, seconds)`` of every song: deterministic, one generator per song;
    ``lengths`` is (mean, sd, (shortest, longest)) in seconds."""
    plan = []
    mean, sd, (low, high) = lengths
    for split in ("train", "valid", "test"):
        for index in range(counts[split]):
            rng = np.random.default_rng([seed, ("train", "valid", "test").index(split), index])
            seconds = float(np.clip(rng.normal(mean, sd), low, high))
            plan.append((split, index, round(seconds, 1)))
    return plan


def _paths(base: Path) -> dict[str, Path]:
    return {"data": base / "data", "cache": base / "cache", "run": base / "run", "log": base / "stages.jsonl"}


def _disk_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


# --------------------------------------------------------------------------- stage: data
STEM_ORDER = ("mixture", "drums", "bass", "other", "vocals")  # musdb's stream order


def _write_stem_mp4(streams: dict[str, np.ndarray], path: Path) -> None:
    """Five AAC streams at 256 kb/s in musdb's order, as ``stempeg`` writes MUSDB18's."""
    import stempeg

    data = np.stack([streams[name] for name in STEM_ORDER])
    stempeg.write_stems(str(path), data, RATE, writer=stempeg.StreamsWriter(codec="aac", bitrate=256000))


def _write_song(job: tuple[str, str, str, int, float]) -> str:
    """Render one song and write it as MUSDB18-HQ WAVs (16-bit) or a MUSDB18 ``.stem.mp4``,
    staged under ``.partial/`` and renamed into place when complete."""
    import soundfile as sf

    from melunmix.synth import arrange_song, render_song

    root, fmt, split, index, seconds = job
    song = arrange_song(SEED, split, index, seconds)
    subset = Path(root) / ("test" if split == "test" else "train")
    dest = subset / (f"{song.name}.stem.mp4" if fmt == "stem.mp4" else song.name)
    if dest.exists():
        return song.name
    audio = render_song(song, RATE)
    staging = Path(root) / ".partial" / dest.name
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "stem.mp4":
        _write_stem_mp4(audio, staging)
    else:
        staging.mkdir()
        for name in STEM_ORDER:
            sf.write(staging / f"{name}.wav", audio[name], RATE, subtype="PCM_16")
    subset.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return song.name


def stage_data(base: Path, counts: dict[str, int], lengths, jobs: int, fmt: str) -> dict:
    import multiprocessing

    import yaml
    from tqdm import tqdm

    from melunmix.synth import arrange_song

    root = _paths(base)["data"]
    plan = song_plan(counts, lengths)
    todo = [(str(root), fmt, split, index, seconds) for split, index, seconds in plan]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for _ in tqdm(pool.imap_unordered(_write_song, todo), total=len(todo), desc="songs", unit="song"):
            pass
    shutil.rmtree(root / ".partial", ignore_errors=True)
    valid = [arrange_song(SEED, "valid", i, s).name for split, i, s in plan if split == "valid"]
    setup = {  # musdb's setup keys (musdb/configs/mus.yaml); the validation songs by name
        "sources": {name: f"{name}.wav" for name in ("vocals", "drums", "bass", "other")},
        "mixture": "mixture.wav",
        "stem_ids": {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4},
        "targets": {"vocals": {"vocals": 1}, "accompaniment": {"bass": 1, "drums": 1, "other": 1}},
        "validation_tracks": valid,
    }
    (root / "setup.yaml").write_text(yaml.safe_dump(setup, sort_keys=False))
    seconds = [s for _, _, s in plan]
    return {"songs": len(plan), "format": fmt, "audio_hours": round(sum(seconds) / 3600, 2),
            "song_minutes": [round(min(seconds) / 60, 2), round(float(np.mean(seconds)) / 60, 2),
                             round(max(seconds) / 60, 2)]}


# --------------------------------------------------------------------------- the profile's stages
def _settings(base: Path, samples_per_track: int | None = None):
    from melunmix.base.config import load_profile

    paths = _paths(base)
    data = {"root": str(paths["data"])}
    if samples_per_track is not None:
        data["samples_per_track"] = samples_per_track
    return load_profile("poster", overrides={
        "data": data, "train": {"epochs": 1, "use_tuned": False, "progress": False},
    })


def _tracks(base: Path, subset: str, split: str | None, settings):
    from melunmix import datasets

    paths = _paths(base)
    found = datasets.find_tracks(paths["data"], subset, split=split)
    return datasets.prepare_tracks(found, sample_rate=settings.data.sample_rate, cache_dir=paths["cache"],
                                   progress=True)


def stage_prepare(base: Path) -> dict:
    """What the training and scoring reads: ``.stem.mp4`` songs decoded into the cache (16-bit
    WAV), WAV songs checked (mixture against the sum of its stems, cached)."""
    settings = _settings(base)
    counts = {f"{subset}/{split or 'all'}": len(_tracks(base, subset, split, settings))
              for subset, split in (("train", "train"), ("train", "valid"), ("test", None))}
    return {"tracks": counts}


def stage_stem_sample(base: Path, nb_songs: int) -> dict:
    """MUSDB18's own container on a sample: the first test songs of a WAV rehearsal written as
    ``.stem.mp4`` (AAC), then decoded into a cache of their own; seconds and bytes per audio
    minute of each, to extrapolate the decode stage and its cache to MUSDB18."""
    import soundfile as sf

    from melunmix import datasets

    paths = _paths(base)
    sample_root, sample_cache = base / "stem-sample", base / "stem-sample-cache"
    shutil.rmtree(sample_root, ignore_errors=True)
    shutil.rmtree(sample_cache, ignore_errors=True)
    songs = sorted(p for p in (paths["data"] / "test").iterdir() if p.is_dir())[:nb_songs]
    if not songs:
        raise SystemExit(f"stem-sample needs the WAV rehearsal's test songs in {paths['data'] / 'test'}")
    (sample_root / "test").mkdir(parents=True)
    shutil.copy2(paths["data"] / "setup.yaml", sample_root / "setup.yaml")
    start = time.perf_counter()
    for song in songs:
        streams = {name: sf.read(song / f"{name}.wav", dtype="float32", always_2d=True)[0] for name in STEM_ORDER}
        _write_stem_mp4(streams, sample_root / "test" / f"{song.name}.stem.mp4")
    encode = time.perf_counter() - start
    start = time.perf_counter()
    found = datasets.find_tracks(sample_root, "test")
    decoded = datasets.prepare_tracks(found, sample_rate=RATE, cache_dir=sample_cache, progress=True)
    decode = time.perf_counter() - start
    minutes = sum(t.duration for t in decoded) / 60
    wav_bytes = sum(_disk_bytes(paths["data"] / "test" / song.name) for song in songs)
    snr = [round(datasets.mixture_snr_db(t), 1) for t in decoded]  # AAC: each stream coded on its own
    return {"songs": len(decoded), "audio_minutes": round(minutes, 2), "mixture_snr_db": snr,
            "encode_s_per_audio_minute": round(encode / minutes, 2),
            "decode_s_per_audio_minute": round(decode / minutes, 2),
            "stem_mp4_mb_per_audio_minute": round(_disk_bytes(sample_root / "test") / 1e6 / minutes, 2),
            "cache_mb_per_audio_minute": round(_disk_bytes(sample_cache) / 1e6 / minutes, 2),
            "wav_mb_per_audio_minute": round(wav_bytes / 1e6 / minutes, 2)}


def stage_stats(base: Path) -> dict:
    from melunmix.training.training_data import prepare_data

    settings = _settings(base)
    paths = _paths(base)
    data = prepare_data(settings, data_root=paths["data"], stats_dir=paths["run"] / "features",
                        cache_dir=paths["cache"], progress=True)
    return {"train_tracks": len(data.train_tracks), "valid_tracks": len(data.valid_tracks),
            "bins": int(data.input_mean.shape[0])}


def stage_loading(base: Path) -> dict:
    import torch
    from tqdm import tqdm

    from melunmix import datasets

    settings = _settings(base)
    train_tracks = _tracks(base, "train", "train", settings)
    dataset = datasets.TrainDataset(train_tracks, targets=["vocals"], seq_dur=settings.data.seq_dur,
                                    samples_per_track=settings.data.samples_per_track, seed=42,
                                    sample_rate=settings.data.sample_rate, progress=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=settings.train.batch_size, shuffle=True,
                                         num_workers=settings.data.nb_workers,
                                         generator=torch.Generator().manual_seed(0))
    start, batches = time.perf_counter(), 0
    for mixture, target in tqdm(loader, desc="poster epoch, loading only", unit="batch"):
        batches += 1
    wall = time.perf_counter() - start
    return {"items": len(dataset), "batches": batches, "workers": settings.data.nb_workers,
            "ms_per_item": round(1000 * wall / len(dataset), 2), "batch_shape": list(mixture.shape)}


def stage_train(base: Path, steps: int) -> dict:
    from melunmix.training.train import Trainer
    from melunmix.training.training_data import prepare_data

    paths = _paths(base)
    probe = _settings(base)
    # the tracks and statistics do not depend on the excerpts per song: prepared once
    data = prepare_data(probe, data_root=paths["data"], stats_dir=paths["run"] / "features",
                        cache_dir=paths["cache"], progress=False)
    samples = max(1, math.ceil(steps * probe.train.batch_size / len(data.train_tracks)))
    settings = _settings(base, samples_per_track=samples)
    out = {"samples_per_track": samples}
    for model in MODELS:
        out_dir = paths["run"] / "models" / model
        shutil.rmtree(out_dir, ignore_errors=True)
        trainer = Trainer(model, settings, data, out_dir, seed=42, target="vocals", tuning_dir=None, progress=True)
        trainer.start(None)
        start = time.perf_counter()
        loss, diverged = trainer.train_step(1)
        train_wall = time.perf_counter() - start
        nb_steps = math.ceil(len(trainer.train_set) / settings.train.batch_size)
        start = time.perf_counter()
        valid_loss, _, _ = trainer.validate(1, diverged)
        valid_wall = time.perf_counter() - start
        trainer.files.save_weights(trainer.model, 1, trainer.history)
        out[model] = {"steps": nb_steps, "s_per_step": round(train_wall / nb_steps, 3),
                      "train_loss": round(float(loss), 5), "valid_s": round(valid_wall, 1),
                      "valid_loss": round(float(valid_loss), 5), "weights": str(trainer.files.weights)}
    return out


def stage_evaluate(base: Path, jobs: int) -> dict:
    from melunmix.scoring.evaluate import evaluate_model

    paths = _paths(base)
    settings = _settings(base)
    tracks = _tracks(base, "test", None, settings)
    weights = _records(base)["train"]["details"]["openunmix"]["weights"]
    eval_dir = paths["run"] / "eval"
    shutil.rmtree(eval_dir, ignore_errors=True)
    start = time.perf_counter()
    written = evaluate_model({"vocals": weights}, tracks, eval_dir, "openunmix", niter=settings.evaluate.niter,
                             jobs=jobs, progress=True, n_fft=settings.stft.n_fft, n_hop=settings.stft.n_hop,
                             sample_rate=settings.data.sample_rate)
    wall = time.perf_counter() - start
    minutes = sum(t.duration for t in tracks) / 60
    return {"tracks": len(written), "audio_minutes": round(minutes, 1), "jobs": jobs,
            "s_per_audio_minute": round(wall / minutes, 2)}


# --------------------------------------------------------------------------- running and reporting
def run_stage(name: str, args: argparse.Namespace) -> None:
    """One stage in this process; appends its record to ``stages.jsonl``."""
    base = args.base
    counts, lengths = (QUICK_COUNTS, QUICK_LENGTHS) if args.quick else (MUSDB18_COUNTS, LENGTHS)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    if name == "data":
        details = stage_data(base, counts, lengths, args.jobs, args.format)
    elif name == "prepare":
        details = stage_prepare(base)
    elif name == "stem-sample":
        details = stage_stem_sample(base, args.stem_songs)
    elif name == "stats":
        details = stage_stats(base)
    elif name == "loading":
        details = stage_loading(base)
    elif name == "train":
        details = stage_train(base, args.steps)
    else:
        details = stage_evaluate(base, args.jobs)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    paths = _paths(base)
    record = {
        "stage": name, "wall_s": round(time.perf_counter() - start_wall, 1),
        "cpu_s": round(time.process_time() - start_cpu + children.ru_utime + children.ru_stime, 1),
        "peak_rss_mb": round(own.ru_maxrss / 1024), "children_peak_rss_mb": round(children.ru_maxrss / 1024),
        "disk_gb": {key: round(_disk_bytes(paths[key]) / 1e9, 2) for key in ("data", "cache", "run")},
        "details": details, "when": time.strftime("%Y-%m-%d %H:%M"),
    }
    with open(paths["log"], "a") as log:
        log.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _records(base: Path) -> dict[str, dict]:
    path = _paths(base)["log"]
    if not path.exists():
        raise SystemExit(f"no stage records in {path}; run `bench/musdb_size.py run` first")
    records = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        records[record["stage"]] = record  # the latest run of each stage
    return records


def report(base: Path) -> str:
    """The stage table and the extrapolations, as Markdown."""
    records = _records(base)
    lines = ["| stage | wall | CPU | peak RSS (process / children) | disk after (data / cache / run) |",
             "|---|---:|---:|---|---|"]
    for name in STAGES:
        if name not in records:
            continue
        r, disk = records[name], records[name]["disk_gb"]
        lines.append(f"| {name} | {r['wall_s'] / 60:.1f} min | {r['cpu_s'] / 60:.1f} min | "
                     f"{r['peak_rss_mb'] / 1024:.1f} / {r['children_peak_rss_mb'] / 1024:.1f} GB | "
                     f"{disk['data']:.1f} / {disk['cache']:.1f} / {disk['run']:.2f} GB |")
    notes = []
    if "data" in records:
        d = records["data"]["details"]
        notes.append(f"- data: {d['songs']} songs, {d['audio_hours']} h of audio, song length "
                     f"{d['song_minutes'][0]}-{d['song_minutes'][2]} min (mean {d['song_minutes'][1]})")
    if "stem-sample" in records and "data" in records:
        d, minutes = records["stem-sample"]["details"], records["data"]["details"]["audio_hours"] * 60
        notes.append(
            f"- stem-sample: {d['songs']} songs ({d['audio_minutes']} min) as .stem.mp4 (AAC 256 kb/s): encoding "
            f"{d['encode_s_per_audio_minute']} s, decoding into the cache {d['decode_s_per_audio_minute']} s per audio "
            f"minute; .stem.mp4 {d['stem_mp4_mb_per_audio_minute']} MB, cache {d['cache_mb_per_audio_minute']} MB, "
            f"16-bit WAV {d['wav_mb_per_audio_minute']} MB per audio minute; mixture against the sum of the decoded "
            f"stems {min(d['mixture_snr_db']):.1f}-{max(d['mixture_snr_db']):.1f} dB SNR. For this dataset's {minutes:.0f} min "
            f"(extrapolated): .stem.mp4 {d['stem_mp4_mb_per_audio_minute'] * minutes / 1e3:.1f} GB, decode cache "
            f"{d['cache_mb_per_audio_minute'] * minutes / 1e3:.1f} GB, decoding "
            f"{d['decode_s_per_audio_minute'] * minutes / 60:.0f} min")
    if "loading" in records:
        d = records["loading"]["details"]
        notes.append(f"- loading: {d['items']} items in {d['batches']} batches, {d['workers']} workers, "
                     f"{d['ms_per_item']} ms per item")
    if "train" in records:
        d = records["train"]["details"]
        epoch_steps = math.ceil(MUSDB18_COUNTS["train"] * 64 / 16)
        for model in MODELS:
            m = d[model]
            epoch = epoch_steps * m["s_per_step"] + m["valid_s"]
            notes.append(
                f"- train, {model}: {m['s_per_step']} s per step ({m['steps']} steps), validation over the "
                f"whole validation songs {m['valid_s']:.0f} s; a poster epoch ({epoch_steps} steps + validation) "
                f"{epoch / 3600:.2f} h, 20 epochs {20 * epoch / 3600:.0f} h, Open-Unmix's 1000 "
                f"{1000 * epoch / 86400:.0f} days (extrapolated)")
    if "evaluate" in records:
        d = records["evaluate"]["details"]
        notes.append(f"- evaluate: {d['tracks']} songs, {d['audio_minutes']} min of audio, "
                     f"{d['s_per_audio_minute']} s per audio minute with {d['jobs']} processes")
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    from generated import bench_data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("run", "report", "stage"))
    parser.add_argument("stage", nargs="?", choices=STAGES, help="with `stage`: the one stage to run here")
    parser.add_argument("--base", type=Path, default=None, help="dataset, cache and run folder")
    parser.add_argument("--quick", action="store_true", help="6 songs of 8-20 s: checks the script")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per model in the train stage (20; quick: 2)")
    parser.add_argument("--format", choices=("wav", "stem.mp4"), default="wav",
                        help="the dataset as MUSDB18-HQ (16-bit WAV folders) or MUSDB18 (.stem.mp4, AAC: "
                             "encoding 10 h takes hours here)")
    parser.add_argument("--stem-songs", type=int, default=4, help="test songs of the stem-sample stage")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the data and evaluate stages")
    parser.add_argument("--only", nargs="*", choices=STAGES, default=None, help="with `run`: these stages")
    args = parser.parse_args(argv)
    if args.base is None:
        args.base = bench_data_dir() / ("musdb-size-quick" if args.quick else "musdb-size")
    args.base.mkdir(parents=True, exist_ok=True)
    if args.steps is None:
        args.steps = 2 if args.quick else 20
    if args.command == "stage":
        run_stage(args.stage, args)
    elif args.command == "run":
        stages = args.only or [s for s in STAGES if not (s == "stem-sample" and args.format == "stem.mp4")]
        for name in stages:
            command = [sys.executable, __file__, "stage", name, "--base", str(args.base), "--steps", str(args.steps),
                       "--jobs", str(args.jobs), "--format", args.format, "--stem-songs", str(args.stem_songs)]
            command += ["--quick"] if args.quick else []
            print(f"== stage {name}", flush=True)
            subprocess.run(command, check=True)
    if args.command in ("run", "report"):
        print(report(args.base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
