"""Measured effect of the study's inference deviations from Open-Unmix, on trained models.

Two ways in which our evaluation separates differently from a whole-track Open-Unmix run,
each measured on the models and test songs of a finished run (default: the demo profile):

1. **Blockwise Wiener filtering**: the multichannel Wiener filter is fitted on consecutive
   blocks of ``wiener_win_len`` frames (300, Open-Unmix 1.3's ``evaluate`` default) instead
   of the whole track (its ``separate_and_evaluate`` function's default). Both
   separations of every test song are scored (BSS Eval v4, museval's numbers through
   ``melunmix.dsp.bsseval``) and the paired per-song difference of median vocals SDR is
   reported (median over songs, with the range).
2. **Chunked model inference**: the models run on chunks of 4096 frames with 256 frames of
   context instead of the whole track. Chunking only acts on songs longer than one chunk
   (95 s at hop 1024, 47 s at hop 512), which the generated test songs are not, so the
   test songs are concatenated into one long song and the two separations are compared:
   the largest absolute sample difference and the SDR of one against the other.

Usage::

    .venv/bin/python bench/deviations.py [--profile demo] [--model openunmix] [--songs N]

Prints a small table; the README's deviations table quotes it. Needs a finished run
(``make reproduce``) for the models and its dataset.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _median_vocals_sdr(references, estimates, rate) -> float:
    from melunmix.dsp.bsseval import score_track

    scores = score_track(references, estimates, rate)
    return float(np.nanmedian(scores["vocals"]["SDR"]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--model", default="openunmix", help="model of the run to separate with")
    parser.add_argument("--songs", type=int, default=None, help="test songs to use (default: all)")
    parser.add_argument("--long-songs", type=int, default=4, help="test songs concatenated for the chunking check")
    args = parser.parse_args(argv)

    import torch

    from melunmix.study import run_setup
    from melunmix.separation.separate import separate
    from melunmix.scoring.track_audio import load_track

    torch.set_num_threads(2)
    run = run_setup.open_run(args.profile, progress=False)
    item = next((r for r in run_setup.model_runs(run) if r.model == args.model), None)
    if item is None or not item.weights.exists():
        print(f"no trained {args.model} in {run.paths.models}; run `make reproduce PROFILE={args.profile}` first",
              file=sys.stderr)
        return 2
    tracks = run_setup.tracks(run, "test")[: args.songs]
    ev = run.settings.evaluate
    print(f"profile {args.profile}, model {item.weights}, {len(tracks)} test songs, niter {ev.niter}")

    # 1. Blockwise vs whole-track Wiener filtering (one block longer than any song).
    whole = 10 ** 7
    start = time.perf_counter()
    diffs = []
    for track in tracks:
        audio = load_track(track)
        sdr = {}
        for win_len in (ev.wiener_win_len, whole):
            out = separate(audio.mixture.T.astype(np.float32), audio.rate, {item.target: item.weights},
                           niter=ev.niter, softmask=ev.softmask, residual=ev.residual, wiener_win_len=win_len)
            estimates = {k: np.asarray(v, dtype=np.float64).T for k, v in out.items()}
            sdr[win_len] = _median_vocals_sdr(audio.references, estimates, audio.rate)
        diffs.append(sdr[ev.wiener_win_len] - sdr[whole])
    diffs = np.array(diffs)
    print(f"Wiener blocks of {ev.wiener_win_len} frames - whole track, median vocals SDR per song (dB): "
          f"median {np.median(diffs):+.3f}, range [{diffs.min():+.3f}, {diffs.max():+.3f}], "
          f"{len(diffs)} songs ({time.perf_counter() - start:.0f} s)")

    # 2. Chunked vs whole-track model inference, on one long song.
    long_tracks = run_setup.tracks(run, "test")[: args.long_songs]
    mixture = np.concatenate([load_track(t).mixture for t in long_tracks]).T.astype(np.float32)
    rate = long_tracks[0].rate
    frames = mixture.shape[1] // run.settings.stft.n_hop
    outs = {}
    for win_len in (4096, None):
        outs[win_len] = separate(mixture, rate, {item.target: item.weights}, niter=ev.niter,
                                 wiener_win_len=ev.wiener_win_len, model_win_len=win_len)["vocals"]
    a, b = outs[4096].astype(np.float64), outs[None].astype(np.float64)
    err = np.max(np.abs(a - b))
    snr = 10 * np.log10(np.sum(b ** 2) / max(np.sum((a - b) ** 2), 1e-300))
    print(f"model chunks of 4096 frames (+256 context) vs whole track, on {mixture.shape[1] / rate:.0f} s "
          f"({frames} frames): largest sample difference {err:.2e}, SNR of chunked vs whole {snr:.1f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
