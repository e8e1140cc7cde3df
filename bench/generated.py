"""Generated MUSDB18-format data for the benchmarks, made once and reused.

Datasets come from :func:`melunmix.synth.make_dataset` (deterministic, resumable) into
``$MELUNMIX_BENCH_DATA`` (default ``<tmp>/melunmix-bench-data``), one folder per set of
parameters, so a second benchmark run skips the rendering.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Optional


def bench_data_dir() -> Path:
    """Where benchmark datasets live: ``$MELUNMIX_BENCH_DATA`` or ``<tmp>/melunmix-bench-data``."""
    return Path(os.environ.get("MELUNMIX_BENCH_DATA") or Path(tempfile.gettempdir()) / "melunmix-bench-data")


def generated_root(nb_train: int, nb_valid: int, nb_test: int, duration: float, seed: int = 0,
                   base: Optional[Path] = None) -> Path:
    """A generated dataset with these counts and song duration (seconds), made if missing.

    ``nb_train`` counts the training songs including the ``nb_valid`` validation songs,
    as :func:`melunmix.synth.make_dataset` does.
    """
    from melunmix import synth

    base = Path(base) if base is not None else bench_data_dir()
    # the generator's version in the name: a newer generator renders into a new folder
    # instead of refusing the old one
    version = getattr(synth, "GENERATOR_VERSION", 0)
    root = base / f"train{nb_train}-valid{nb_valid}-test{nb_test}-{duration:g}s-seed{seed}-v{version}"
    start = time.perf_counter()
    synth.make_dataset(root, nb_train=nb_train, nb_valid=nb_valid, nb_test=nb_test,
                       duration=duration, seed=seed, progress=False)
    elapsed = time.perf_counter() - start
    if elapsed > 1.0:
        print(f"generated dataset {root} in {elapsed:.0f} s (reused by later runs)", flush=True)
    return root


def pcm16_copy(root: Path) -> Path:
    """A copy of ``root`` with every WAV stored as 16-bit PCM (as MUSDB18-HQ is), made once.

    musdb 0.4.3 reads every file through ffmpeg as 16-bit PCM (``ffmpeg_format="s16le"``),
    even float WAVs, while melunmix reads them exactly with soundfile; on a 16-bit copy both
    readers return the same samples, so scores computed from either can be compared value
    for value.
    """
    import shutil

    import soundfile as sf

    root = Path(root)
    dest = root.with_name(root.name + "-pcm16")
    if (dest / "setup.yaml").is_file():
        return dest
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for path in sorted(root.rglob("*")):
        target = partial / path.relative_to(root)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".wav":
            audio, rate = sf.read(path, dtype="float64", always_2d=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            sf.write(target, audio, rate, subtype="PCM_16")
        elif path.name != "setup.yaml":  # written last: it marks the copy complete
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    shutil.copy2(root / "setup.yaml", partial / "setup.yaml")
    partial.rename(dest)
    return dest
