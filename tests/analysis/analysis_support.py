"""Museval JSON writers, raw medians and simulated studies shared by the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from melunmix.analysis import inference

from museval_json import raw_track_medians


METRICS = ["SDR", "SIR", "ISR", "SAR"]


TARGETS = ["vocals", "accompaniment"]


TRACKS = ["song A", "song B", "song C"]


def write_museval_json(eval_dir, method, track, values):
    """museval's own file for one track: values = {target: {metric: [frame scores]}}."""
    import museval

    store = museval.TrackStore(track, win=1.0, hop=1.0)
    for target, metrics in values.items():
        store.add_target(target, {k: list(map(float, v)) for k, v in metrics.items()})
    path = eval_dir / method / "test" / f"{track}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    store.save(path)
    return path


def track_medians(eval_dir, method, target, metric):
    raw = raw_track_medians(eval_dir, method)
    return {trk: v for (trk, tg, m), v in raw.items() if tg == target and m == metric}


def per_track(scores: dict[str, np.ndarray | list], tracks=None) -> pd.DataFrame:
    """Per-track long table: method -> one score per song (NaN: not scored), the same for
    every target and metric (accompaniment shifted by -2 dB)."""
    rows = []
    for method, values in scores.items():
        names = tracks or [f"song {i:02d}" for i in range(len(values))]
        for track, value in zip(names, values):
            if value is None:
                continue
            for target, shift in (("vocals", 0.0), ("accompaniment", -2.0)):
                for metric in METRICS:
                    rows.append(dict(method=method, track=track, target=target, metric=metric,
                                     score=float(value) + shift))
    return pd.DataFrame(rows)


def crossed_data(rng, nb_songs, nb_seeds, effect, song_sd=1.0, seed_sd=0.3, noise_sd=0.2):
    """Paired differences d[song, seed] = effect + song + seed + noise: a seed is one network
    that scores every song (its offset is shared by all songs), songs differ in difficulty."""
    song = rng.normal(0, song_sd, size=(nb_songs, 1))
    seed = rng.normal(0, seed_sd, size=(1, nb_seeds))
    return effect + song + seed + rng.normal(0, noise_sd, size=(nb_songs, nb_seeds))


def coverage(nb_songs, nb_seeds, effect, crossed, reps=300, n_boot=400, **sd):
    """How often the 95 % interval holds the true effect, over simulated studies."""
    rng = np.random.default_rng(2024)
    hits = 0
    for rep in range(reps):
        d = crossed_data(rng, nb_songs, nb_seeds, effect, **sd)
        if crossed:
            draws = inference.crossed_bootstrap(d, np.zeros_like(d), True, n_boot, rep)
        else:  # the former scheme: seeds redrawn independently inside each song
            boot = np.random.default_rng(rep)
            songs = boot.integers(0, nb_songs, size=(n_boot, nb_songs))[..., None]
            seeds = boot.integers(0, nb_seeds, size=(n_boot, nb_songs, nb_seeds))
            draws = np.median(d[songs, seeds].mean(axis=-1), axis=1)
        low, high = np.quantile(draws, [0.025, 0.975])
        hits += low <= effect <= high
    return hits / reps


def paired_row(**changes):
    row = dict(model="melunmix", baseline="openunmix", target="vocals", metric="SDR", pairing="seed",
               n_songs=16, n_songs_excluded=0, n_seeds=3, n_seeds_baseline=3, median_diff=0.1,
               mean_diff=0.12, ci_low=-0.3, ci_high=0.5, level=0.95, p_wilcoxon=0.42, p_holm=0.84)
    row.update(changes)
    return pd.DataFrame([row])
