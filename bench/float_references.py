"""How much musdb's 16-bit reading of float WAV references moves museval's scores.

musdb reads every stem through ffmpeg as 16-bit (``s16le``), WAV files included; melunmix
reads a float WAV root (the generated dataset is float32 WAV) as float. On MUSDB18 (AAC
``.stem.mp4``, decoded to 16 bits by both) and MUSDB18-HQ (16-bit WAV) the two readings are
the same samples. This script scores the IRM1 oracle on songs of a float WAV root both
ways -- melunmix's references and musdb + ``museval.eval_mus_track`` -- and prints the
largest difference of the per-track medians and of single windows.

    .venv/bin/python bench/float_references.py data/generated/<dataset> [--songs 4]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="a MUSDB18-format root of float WAV files")
    parser.add_argument("--songs", type=int, default=4)
    args = parser.parse_args()

    import musdb
    import museval

    from melunmix.datasets import find_tracks
    from melunmix.scoring.museval_scores import score_estimates
    from melunmix.separation.oracles import oracle_estimates
    from melunmix.scoring.track_audio import load_track

    tracks = sorted(find_tracks(args.root, "test"), key=lambda t: t.name)[: args.songs]
    mus = {t.name: t for t in musdb.DB(root=args.root, subsets="test", is_wav=True).tracks}
    medians, windows = [], []
    for track in tracks:
        audio = load_track(track)
        estimates = oracle_estimates("IRM1", audio.mixture, audio.stems)
        ours = json.loads(score_estimates(audio, estimates).json)
        theirs = json.loads(museval.eval_mus_track(mus[track.name], estimates, mode="v4").json)
        for a, b in zip(ours["targets"], theirs["targets"]):
            for metric in ("SDR", "SIR", "ISR", "SAR"):
                x = np.array([f["metrics"][metric] for f in a["frames"]], dtype=float)
                y = np.array([f["metrics"][metric] for f in b["frames"]], dtype=float)
                ok = np.isfinite(x) & np.isfinite(y)
                windows.append(np.max(np.abs(x[ok] - y[ok])))
                medians.append(abs(np.nanmedian(x) - np.nanmedian(y)))
                print(f"{track.name:45s} {a['name']:13s} {metric}: median {np.nanmedian(x):7.3f} (float) "
                      f"{np.nanmedian(y):7.3f} (musdb, 16-bit)")
    print(f"{len(tracks)} songs x 2 targets x 4 metrics: largest difference of a track median "
          f"{max(medians):.4f} dB, of one window {max(windows):.4f} dB")


if __name__ == "__main__":
    main()
