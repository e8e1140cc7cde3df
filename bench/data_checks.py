"""Measured grounds of two data checks: one rate for training and scoring, and the mixture check.

1. **Rates**: the oracles IRM2 and MIX (SiSEC 2018's, :mod:`melunmix.separation.oracles`) scored
   with BSS Eval v4 (museval's numbers, :mod:`melunmix.dsp.bsseval`) on the same generated
   songs four ways: rendered at 44.1 kHz and scored there; rendered at 22.05 kHz and
   scored there; rendered at 22.05 kHz and scored on copies resampled to 44.1 kHz (what
   scoring "at the training rate" through the resample cache would do); rendered at
   44.1 kHz and scored on copies resampled to 22.05 kHz. Oracle masks should score well
   (positive ISR and SAR) in every case; where they do not, the scores are not to be
   trusted. This is why :func:`melunmix.datasets.check_root` refuses songs at another
   rate than the profile's instead of resampling them.
2. **Mixture check**: the SNR of each song's mixture against the sum of its stems
   (:func:`melunmix.datasets.mixture_snr_db`) for the generated WAV songs and for the same
   songs written as MUSDB18 ``.stem.mp4`` (five AAC streams at 256 kb/s, as ``stempeg``
   writes them) and decoded by the cache: where :data:`MIXTURE_SNR_THRESHOLD_DB` stands.

Usage::

    .venv/bin/python bench/data_checks.py [--songs 4] [--duration 20] [--quick]

Prints two tables (medians over songs; min - max in brackets). Data go to
``$MELUNMIX_BENCH_DATA`` (default ``<tmp>/melunmix-bench-data``) and are reused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))


def _rendered(rate: int, songs: int, duration: float) -> Path:
    from generated import bench_data_dir

    from melunmix import synth

    root = bench_data_dir() / f"data-checks-test{songs}-{duration:g}s-{rate}Hz-v{synth.GENERATOR_VERSION}"
    return synth.make_dataset(root, nb_train=1, nb_valid=0, nb_test=songs, duration=duration, seed=7,
                              sample_rate=rate, progress=False)


def _oracle_medians(tracks, oracle: str) -> dict[str, list[float]]:
    """Per song: median over frames of vocals SDR, ISR, SAR (dB)."""
    from melunmix.dsp.bsseval import score_track
    from melunmix.scoring.evaluate import OracleSeparation
    from melunmix.scoring.track_audio import load_track

    out = {"SDR": [], "ISR": [], "SAR": []}
    for track in tracks:
        audio = load_track(track)
        estimates = OracleSeparation(oracle)(audio)
        scores = score_track(audio.references, estimates, audio.rate)
        for metric in out:
            out[metric].append(float(np.nanmedian(scores["vocals"][metric])))
    return out


def _cell(values: list[float]) -> str:
    return f"{np.median(values):7.2f} [{min(values):.1f} - {max(values):.1f}]"


def rates_table(songs: int, duration: float, cache: Path) -> None:
    from melunmix import datasets

    native = {rate: datasets.find_tracks(_rendered(rate, songs, duration), "test") for rate in (44100, 22050)}
    cases = [
        ("rendered 44.1 kHz, scored at 44.1 kHz", native[44100]),
        ("rendered 22.05 kHz, scored at 22.05 kHz", native[22050]),
        ("rendered 22.05 kHz, resampled to 44.1 kHz", datasets.prepare_tracks(native[22050], 44100, cache, False)),
        ("rendered 44.1 kHz, resampled to 22.05 kHz", datasets.prepare_tracks(native[44100], 22050, cache, False)),
    ]
    print(f"\n1. Oracle vocals scores, median over {songs} songs of {duration:g} s (min - max), dB")
    print(f"{'case':44s} {'oracle':6s} {'SDR':>22s} {'ISR':>22s} {'SAR':>22s}")
    for label, tracks in cases:
        for oracle in ("IRM2", "MIX"):
            medians = _oracle_medians(tracks, oracle)
            print(f"{label:44s} {oracle:6s} {_cell(medians['SDR']):>22s} {_cell(medians['ISR']):>22s} "
                  f"{_cell(medians['SAR']):>22s}", flush=True)


def _write_stem_mp4(track, path: Path) -> None:
    import soundfile as sf
    import stempeg

    # musdb's stream order: mixture, drums, bass, other, vocals
    data = np.stack([sf.read(track.wav(stem), dtype="float32", always_2d=True)[0]
                     for stem in ("mixture", "drums", "bass", "other", "vocals")])
    path.parent.mkdir(parents=True, exist_ok=True)
    stempeg.write_stems(str(path), data, track.rate, writer=stempeg.StreamsWriter(codec="aac", bitrate=256000))


def mixture_table(songs: int, duration: float, cache: Path) -> None:
    from melunmix import datasets

    wav = datasets.find_tracks(_rendered(44100, songs, duration), "test")
    stem_root = cache / f"stems-test{songs}-{duration:g}s"
    for track in wav:
        path = stem_root / "test" / f"{track.name}.stem.mp4"
        if not path.is_file():
            _write_stem_mp4(track, path)
    decoded = datasets.prepare_tracks(datasets.find_tracks(stem_root, "test"), cache_dir=cache, progress=False)
    print(f"\n2. Mixture against the sum of its stems, SNR in dB over {songs} songs "
          f"(warning below {datasets.MIXTURE_SNR_THRESHOLD_DB:g} dB)")
    for label, tracks in (("generated WAV (float)", wav), ("the same as .stem.mp4 (AAC 256 kb/s)", decoded)):
        snrs = [datasets.mixture_snr_db(t) for t in tracks]
        print(f"{label:40s} {_cell(snrs)}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--songs", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per song")
    parser.add_argument("--quick", action="store_true", help="2 songs of 8 s: a check of the script")
    args = parser.parse_args(argv)
    songs, duration = (2, 8.0) if args.quick else (args.songs, args.duration)

    from generated import bench_data_dir

    cache = bench_data_dir() / "data-checks-cache"
    rates_table(songs, duration, cache)
    mixture_table(songs, duration, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
