"""Does a model trained on the built-in data separate voices made by other means?

The aim of issue 12, measured outside this project's own data: songs whose vocals come from
another synthesiser, Praat's KlattGrid (through ``praat-parselmouth``; a Klatt
cascade/parallel formant synthesiser, not :mod:`melunmix.synth.voice`), singing spoken-vowel
formants of Peterson & Barney (1952, the table Praat ships) for men and women, over an
accompaniment made by other means (Karplus-Strong plucked bass and chords, detuned-saw
pads, synthesised kick, snare and hats: numpy and scipy, no soundfont). Two vocal models
(e.g. one trained on generator version 2's data, one on version 3's) separate every song;
each estimate is scored with BSS Eval v4 (``melunmix.dsp.bsseval``, museval's numbers), and
the script prints the median vocals SDR over songs of each model and of MIX (the mixture
as the estimate), and the paired per-song differences.

Usage::

    .venv/bin/pip install praat-parselmouth==0.4.7       # benchmark-only dependency
    .venv/bin/python bench/voice_transfer.py \\
        --model v2=results/demo/models/openunmix/vocals.pth \\
        --model v3=/tmp/demo-try/b/models/openunmix/vocals.pth [--songs 8] [--duration 20]

The test songs are drawn from ``--seed`` and are the same for every model (KlattGrid's
noise sources are not seedable, so its aspiration and frication noise differ from run to
run: a rerun moves the scores by a few hundredths of a dB).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.signal

RATE = 44100
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_PROGRESSION = (0, 4, 5, 3)  # I-V-vi-IV
# Peterson & Barney's vowels, as Praat's table labels them (heed, hid, head, had, hod, hawed,
# hood, who'd, hud, heard)
_VOWELS = ("iy", "ih", "eh", "ae", "aa", "ao", "uh", "uw", "ah", "er")


def _require_parselmouth():
    try:
        import parselmouth  # noqa: F401
        from parselmouth.praat import call
    except ImportError:
        raise SystemExit("this benchmark needs Praat's KlattGrid: .venv/bin/pip install praat-parselmouth==0.4.7")
    return call


def peterson_barney_means(call) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Mean F1-F3 (Hz) per speaker type ("m", "w") and vowel, from Praat's own copy of the
    Peterson & Barney (1952) table."""
    table = call("Create formant table (Peterson & Barney 1952)")
    nb_rows = int(call(table, "Get number of rows"))
    sums: dict[tuple[str, str], list] = {}
    for row in range(1, nb_rows + 1):
        kind = call(table, "Get value", row, "Type")
        vowel = call(table, "Get value", row, "Vowel")
        values = [float(call(table, "Get value", row, f"F{k}")) for k in (1, 2, 3)]
        sums.setdefault((kind, vowel), []).append(values)
    return {kind: {vowel: tuple(np.mean(sums[(kind, vowel)], axis=0)) for vowel in _VOWELS}
            for kind in ("m", "w")}


# --------------------------------------------------------------------------- the voice
def klatt_voice(call, rng: np.random.Generator, notes, kind: str, vowels, duration: float) -> np.ndarray:
    """Sing ``notes`` ((start, end, midi) in seconds) with a KlattGrid: a vowel per note, some
    notes opened by a fricative or a plosive burst (frication), vibrato, flutter.

    Returns mono float64 samples at ``RATE`` for ``duration`` seconds.
    """
    grid = call("Create KlattGrid", "voice", 0.0, duration, 5, 0, 0, 4, 0, 0, 0)
    f45 = (3500.0, 4500.0) if kind == "m" else (4200.0, 5000.0)
    call(grid, "Add flutter point", 0.0, float(rng.uniform(0.2, 0.5)))
    call(grid, "Add spectral tilt point", 0.0, float(rng.uniform(0.0, 6.0)))
    call(grid, "Add voicing amplitude point", 0.0, 0.0)
    call(grid, "Add frication amplitude point", 0.0, 0.0)
    call(grid, "Add aspiration amplitude point", 0.0, 0.0)
    vibrato_rate, vibrato_depth = float(rng.uniform(4.5, 6.5)), float(rng.uniform(0.2, 0.5))  # Hz, semitones
    for k, value in enumerate((f45[0], f45[1])):
        call(grid, "Add oral formant frequency point", 4 + k, 0.0, value)
        call(grid, "Add oral formant bandwidth point", 4 + k, 0.0, 250.0 + 50 * k)
    for k, (freq, bw) in enumerate(((2500.0, 500.0), (4000.0, 600.0), (6000.0, 800.0), (8000.0, 1000.0)), 1):
        call(grid, "Add frication formant frequency point", k, 0.0, freq)
        call(grid, "Add frication formant bandwidth point", k, 0.0, bw)
        call(grid, "Add frication formant amplitude point", k, 0.0, 60.0)
    previous_end = -1.0
    for index, (start, end, midi) in enumerate(notes):
        joined_next = index + 1 < len(notes) and notes[index + 1][0] - end < 0.05
        vowel = vowels[rng.integers(len(vowels))]
        f1, f2, f3 = vowels_table[kind][vowel]
        for k, value in enumerate((f1, f2, f3), 1):
            call(grid, "Add oral formant frequency point", k, start + 0.04, value)
            call(grid, "Add oral formant frequency point", k, max(start + 0.05, end - 0.04), value)
            call(grid, "Add oral formant bandwidth point", k, start + 0.04, 60.0 + 30.0 * k)
        hz = 440.0 * 2 ** ((midi - 69) / 12)
        t = np.arange(start, end, 0.02)
        for time_point in t:
            depth = vibrato_depth * min(1.0, max(0.0, (time_point - start - 0.15) / 0.2))
            call(grid, "Add pitch point", float(time_point),
                 hz * 2 ** (depth * np.sin(2 * np.pi * vibrato_rate * (time_point - start)) / 12))
        consonant = rng.choice(["none", "fricative", "plosive"], p=[0.4, 0.35, 0.25])
        joined = start - previous_end < 0.05
        if consonant == "fricative":
            call(grid, "Add frication amplitude point", start, 0.0)
            call(grid, "Add frication amplitude point", start + 0.02, 42.0)
            call(grid, "Add frication amplitude point", start + 0.07, 42.0)
            call(grid, "Add frication amplitude point", start + 0.09, 0.0)
            voice_on = start + 0.08
        elif consonant == "plosive":
            call(grid, "Add frication amplitude point", start + 0.03, 0.0)
            call(grid, "Add frication amplitude point", start + 0.032, 45.0)
            call(grid, "Add frication amplitude point", start + 0.045, 0.0)
            call(grid, "Add aspiration amplitude point", start + 0.045, 40.0)
            call(grid, "Add aspiration amplitude point", start + 0.08, 0.0)
            voice_on = start + 0.08
        else:
            voice_on = start + 0.02
        if not joined or consonant != "none":
            call(grid, "Add voicing amplitude point", start, 0.0)
        call(grid, "Add voicing amplitude point", voice_on, 90.0)
        call(grid, "Add voicing amplitude point", max(voice_on + 0.01, end - 0.02), 90.0)
        if not joined_next:
            call(grid, "Add voicing amplitude point", end, 0.0)
        previous_end = end
    sound = call(grid, "To Sound")
    samples = sound.values[0].astype(np.float64)
    if int(round(sound.sampling_frequency)) != RATE:
        import soxr

        samples = soxr.resample(samples, sound.sampling_frequency, RATE)
    out = np.zeros(int(round(duration * RATE)))
    out[:min(len(out), len(samples))] = samples[:len(out)]
    return out


vowels_table: dict = {}


# --------------------------------------------------------------------------- accompaniment
def _pluck(freq: float, seconds: float, rng: np.random.Generator, damping: float = 0.996) -> np.ndarray:
    """Karplus-Strong plucked string (noise burst in a delay line with an averaging loop filter)."""
    period = max(2, int(round(RATE / freq)))
    excitation = np.zeros(int(seconds * RATE))
    excitation[:period] = rng.uniform(-1, 1, period)
    feedback = np.zeros(period + 2)
    feedback[0] = 1.0
    feedback[period] = feedback[period + 1] = -0.5 * damping
    return scipy.signal.lfilter([1.0], feedback, excitation)


def _saw_pad(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    for detune in (-0.006, 0.0, 0.007):
        phase = (freq * (1 + detune) * t + rng.random()) % 1.0
        out += 2 * phase - 1
    out = scipy.signal.lfilter(*scipy.signal.butter(2, 1800, fs=RATE), out)
    envelope = np.minimum(1.0, np.minimum(t / 0.3, (t[-1] - t) / 0.3))
    return out * envelope / 3


def _drum_hits(kind: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.4 * RATE)) / RATE
    if kind == "kick":
        return np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * np.exp(-t * 12)
    noise = rng.standard_normal(len(t))
    if kind == "snare":
        body = 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t * 25)
        return body + scipy.signal.lfilter(*scipy.signal.butter(2, 1500, "highpass", fs=RATE), noise) * np.exp(-t * 18)
    return scipy.signal.lfilter(*scipy.signal.butter(2, 7000, "highpass", fs=RATE), noise) * np.exp(-t * 60) * 0.5


def _reverb(mono: np.ndarray, rng: np.random.Generator, pan: float) -> np.ndarray:
    """Panned mono source plus a small stereo noise tail (independent per channel)."""
    tail = rng.standard_normal((int(0.4 * RATE), 2)) * np.exp(-np.arange(int(0.4 * RATE)) / RATE * 15)[:, None]
    tail *= 0.02
    left, right = np.cos(pan * np.pi / 2), np.sin(pan * np.pi / 2)
    dry = np.stack([left * mono, right * mono], axis=1)
    wet = np.stack([scipy.signal.fftconvolve(dry[:, c], tail[:, c])[:len(mono)] for c in range(2)], axis=1)
    return dry + wet


def make_song(call, seed: int, duration: float) -> dict[str, np.ndarray]:
    """One test song: vocals (KlattGrid) and accompaniment (other means), stereo (samples, 2)."""
    rng = np.random.default_rng([2024, seed])
    bpm = float(rng.uniform(85, 130))
    beat = 60.0 / bpm
    key = int(rng.integers(12))
    nb = int(round(duration * RATE))
    scale = [(key + s) % 12 for s in _MAJOR]
    accompaniment = np.zeros((nb, 2))
    bar = 4 * beat
    nb_bars = int(duration / bar) + 1
    bass, chords, drums = np.zeros(nb), np.zeros(nb), np.zeros(nb)
    hits = {k: _drum_hits(k, rng) for k in ("kick", "snare", "hat")}
    for b in range(nb_bars):
        degree = _PROGRESSION[b % 4]
        root = 36 + scale[degree]
        triad = [48 + scale[(degree + k) % 7] + (12 if (degree + k) >= 7 else 0) for k in (0, 2, 4)]
        t0 = b * bar
        for step in range(8):
            at = int((t0 + step * beat / 2) * RATE)
            if at >= nb:
                break
            note = _pluck(440 * 2 ** ((root + (7 if step % 4 == 2 else 0) - 69) / 12), beat / 2 + 0.3, rng)
            bass[at:at + len(note)] += note[:nb - at] * 0.6
            for kind, steps in (("kick", (0, 4)), ("snare", (2, 6)), ("hat", range(8))):
                if step in steps:
                    hit = hits[kind]
                    drums[at:at + len(hit)] += hit[:nb - at] * (0.8 if kind != "hat" else 0.3)
        at = int(t0 * RATE)
        if at < nb:
            pad = sum(_saw_pad(440 * 2 ** ((p - 69) / 12), bar, rng) for p in triad)
            chords[at:at + len(pad)] += pad[:nb - at] * 0.4
            for k, p in enumerate(triad):
                strum = _pluck(440 * 2 ** ((p + 12 - 69) / 12), bar, rng, damping=0.998) * 0.25
                start = at + int(k * 0.02 * RATE)
                chords[start:start + len(strum)] += strum[:max(0, nb - start)]
    for part, pan in ((bass, 0.5), (drums, 0.5), (chords, float(rng.uniform(0.25, 0.75)))):
        part /= max(np.sqrt(np.mean(part**2)), 1e-9)
        accompaniment += _reverb(part, rng, pan) * 10 ** (float(rng.uniform(-20, -16)) / 20)

    # the melody: phrases of notes in the scale after a 2 s intro
    kind = "m" if rng.random() < 0.5 else "w"
    centre = 52 if kind == "m" else 64
    notes, t = [], 2.0
    pitch = centre
    while t < duration - 1.0:
        phrase_end = min(duration - 0.5, t + float(rng.uniform(2.0, 4.0)))
        while t < phrase_end - 0.2:
            length = float(rng.choice([0.25, 0.5, 0.5, 0.75, 1.0])) * beat * 2
            candidates = [p for p in range(centre - 5, centre + 10) if p % 12 in scale]
            pitch = int(min(candidates, key=lambda p: abs(p - (pitch + rng.integers(-3, 4)))))
            notes.append((t, min(t + length, phrase_end), pitch))
            t += length
        t += float(rng.uniform(0.5, 1.5))
    vocals = klatt_voice(call, rng, notes, kind, _VOWELS, duration)
    vocals /= max(np.sqrt(np.mean(vocals[int(2 * RATE):] ** 2)), 1e-9)
    vocals = _reverb(vocals, rng, float(rng.uniform(0.4, 0.6))) * 10 ** (float(rng.uniform(-18, -14)) / 20)
    mixture = vocals + accompaniment
    peak = np.abs(mixture).max()
    if peak > 0.9:
        vocals, accompaniment, mixture = (x * 0.9 / peak for x in (vocals, accompaniment, mixture))
    return {"vocals": vocals, "accompaniment": accompaniment, "mixture": mixture}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=PATH",
                        help="a vocals model file (repeat; e.g. v2=... v3=...)")
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per song")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="write the test songs' WAVs here")
    args = parser.parse_args(argv)
    call = _require_parselmouth()
    models = dict(item.split("=", 1) for item in args.model)

    import torch

    from melunmix.dsp.bsseval import score_track
    from melunmix.separation.separate import separate

    torch.set_num_threads(2)
    vowels_table.update(peterson_barney_means(call))
    start = time.perf_counter()
    rows = []
    for song in range(args.songs):
        audio = make_song(call, args.seed * 1000 + song, args.duration)
        if args.save is not None:
            import soundfile as sf

            folder = args.save / f"song{song:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for name, signal in audio.items():
                sf.write(folder / f"{name}.wav", signal.astype(np.float32), RATE, subtype="FLOAT")
        references = {"vocals": audio["vocals"], "accompaniment": audio["accompaniment"]}
        row = {}
        estimates = {"MIX": {"vocals": audio["mixture"], "accompaniment": audio["mixture"]}}
        for label, path in models.items():
            out = separate(audio["mixture"].T.astype(np.float32), RATE, {"vocals": path}, niter=1,
                           residual=True, wiener_win_len=300)
            estimates[label] = {k: np.asarray(v, dtype=np.float64).T for k, v in out.items()}
        for label, estimate in estimates.items():
            scores = score_track(references, estimate, RATE)
            row[label] = float(np.nanmedian(scores["vocals"]["SDR"]))
        rows.append(row)
        print(f"song {song}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    labels = ["MIX"] + list(models)
    sdr = {label: np.array([r[label] for r in rows]) for label in labels}
    print(f"\n{args.songs} songs x {args.duration:g} s, KlattGrid vocals over other-means accompaniment "
          f"({time.perf_counter() - start:.0f} s); median vocals SDR over songs (per-song median over 1 s frames):")
    for label in labels:
        print(f"  {label:<6} {np.median(sdr[label]):6.2f} dB")
    names = list(models)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            diff = sdr[b] - sdr[a]
            print(f"  {b} - {a}: median paired difference {np.median(diff):+.2f} dB "
                  f"(range {diff.min():+.2f} to {diff.max():+.2f}; {int(np.sum(diff > 0))} of {len(diff)} songs higher)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
