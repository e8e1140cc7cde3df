"""BSS Eval v4 as museval computes it, many times faster (issue 13).

:func:`score_track` gives the numbers of ``museval.eval_mus_track(track, estimates,
mode="v4", win=win, hop=hop)``: BSS Eval v4 in image mode
(``museval.metrics.bss_eval(..., compute_permutation=False, framewise_filters=False,
bsseval_sources_version=False)``), i.e. distortion filters of 512 taps computed once per
track from the whole signals, then SDR, ISR, SIR and SAR of every window. Every detail
that decides a number is museval's: the targets scored together (all targets but the
accompaniment, then vocals + accompaniment as a pair), estimates padded or cut to the
references' length, ``int(win * rate)`` samples per window, full windows only (one window
of the whole track when it is not longer than a window), the Gram matrix regularised with
``eps * I`` (solved by Cholesky; museval's LU, then least squares, where that fails), NaN
for every target in a window where any reference or
estimate is all zero (summed over channels), ``inf`` where an error energy is exactly
zero, and the same ``ValueError`` for a source that is silent over the whole track.
:func:`track_store` wraps the scores in a ``museval.TrackStore``, whose ``.json`` is the
file museval writes and ``museval.EvalStore`` / ``MethodStore`` read.

The numbers agree with museval's to float64 round-off. How many digits that leaves
depends on the conditioning of the Gram matrix of the delayed references: on noise and
simple synthetic signals about 1e-12 dB; on music, whose Gram matrix is ill-conditioned
(condition numbers ~1e13), museval's own numbers move by ~1e-4 dB when its inputs are
multiplied by 1 + 1e-15, and ours agree within that (measured <= 1e-4 dB; the issue's
tolerance is 1e-2 dB), so a few values of the JSON, rounded to 1e-5 dB, can differ in
their last digit. SDR (computed in the time domain from the estimate error, as the sum
of museval's three error terms is) is as exact as the inputs. Where a metric is made of
round-off itself - an estimate equal to its reference, where museval gives ISR, SIR and
SAR of 250-320 dB from rounding errors - ours are of the same size (> 200 dB) but not
the same digits; SDR is ``inf`` on both sides there. Likewise, references band-limited
down to round-off (a steep low-pass with no noise floor at all) make the Gram matrix
numerically singular: museval's ISR, SIR and SAR then move by several dB when its inputs
are multiplied by 1 + 1e-15, and no other arithmetic can reproduce them (SDR is still
exact). Audio with any noise floor (16-bit quantisation is -96 dB) stays determined.

How museval's time is removed (one thread, 3-min stereo pair: museval 23 s)
-------------------------------------------------------------------------
- Cross-correlations (museval: 39 complex FFTs of 2^23 points, 61 %). The Gram matrix and
  the correlations between references and estimates need lags below 512 only. They are
  summed over blocks: the FFT of each block of ``y`` times the conjugate FFT of the
  block of ``x`` extended by 511 samples on both sides, products summed over all blocks,
  and one short inverse FFT per pair gives exactly the lags -511..511 of the whole
  signals (:func:`_correlations`).
- Projections (museval: a Python loop of small ``fftconvolve`` calls per window, 18 %).
  Every window of every reference channel is transformed once (batched real FFTs, all
  windows of a chunk at a time); the filtered references are products with the
  filters' spectra, and the energies the metrics need are taken in the frequency domain
  (Parseval), so no inverse FFT is made (:func:`_window_metrics`). Each window's
  projection is the full convolution of the window alone, as museval's (the FFT length
  holds window + 511 samples).
- The linear systems (2 %): one Cholesky factorisation of the Gram matrix per track,
  solved for the filters of every estimate at once; its leading block serves the first
  source's own filters, and one smaller factorisation per further source.

Memory is bounded: signals are read in chunks of blocks / windows straight from the
input arrays (float32 inputs are converted chunk by chunk), so beyond the inputs a
10-minute stereo pair at 44.1 kHz needs about 100 MB with 1 s windows (bench/evaluate.py
measures it). A single very long window (``win`` of minutes, ``np.inf``) is transformed
whole, as museval convolves it whole: about 50 bytes per sample and channel.

Example
-------
>>> from melunmix.dsp.bsseval import score_track, track_store
>>> scores = score_track({"vocals": v, "accompaniment": a},
...                      {"vocals": v_hat, "accompaniment": a_hat}, rate=44100)
>>> scores["vocals"]["SDR"]          # one value per 1 s window
>>> track_store(refs, ests, 44100, track_name="song").json   # museval's JSON
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.fft

from ..base.names import METRICS

#: Distortion filter length (taps) of BSS Eval v4, as museval.
FILTERS_LEN = 512
#: The order of museval's ``bss_eval`` outputs (a tuple), which this module follows; tables use
#: :data:`melunmix.base.names.METRICS` (SDR, SIR, ISR, SAR).
OUTPUT_ORDER = ("SDR", "ISR", "SIR", "SAR")

# FFT length of the correlation blocks; blocks hold BLOCK_FFT - 2 * (FILTERS_LEN - 1) samples.
_BLOCK_FFT = 16384
# Samples (per channel) read at once by the correlation pass / the window pass.
_CHUNK_SAMPLES = 1 << 17
_WINDOWS_CHUNK_SAMPLES = 1 << 18


# --------------------------------------------------------------------------- public API


def bss_eval(
    references: Sequence[np.ndarray] | np.ndarray,
    estimates: Sequence[np.ndarray] | np.ndarray,
    window: float,
    hop: float,
    filters_len: int = FILTERS_LEN,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``museval.metrics.bss_eval`` in v4 image mode: (SDR, ISR, SIR, SAR), each (nsrc, nwin).

    Parameters
    ----------
    references, estimates : sequence of np.ndarray, shape (nb_samples, nb_channels) or (nb_samples,)
        True sources and their estimates, in the same order (museval's
        ``compute_permutation=False``); or arrays shaped (nsrc, nb_samples, nb_channels).
        All references share one shape and the estimates must have it too (museval's
        ``bss_eval`` does not pad; :func:`evaluate` does).
    window, hop : int
        Window and hop in samples (``np.inf``: one window of the whole signals).
    filters_len : int
        Distortion filter taps (BSS Eval: 512).

    Returns
    -------
    sdr, isr, sir, sar : np.ndarray, shape (nsrc, nwin)
        Metrics in dB per source and window; NaN in windows where a reference or an
        estimate is silent; ``inf`` where an error energy is exactly 0.

    Raises
    ------
    ValueError
        Shapes that differ, or a reference or estimate silent over the whole signal
        (museval's ``validate``).
    """
    refs = _as_sources(references, "references")
    ests = _as_sources(estimates, "estimates")
    if len(refs) != len(ests) or any(r.shape != e.shape for r, e in zip(refs, ests)) or \
            len({r.shape for r in refs}) > 1:
        raise ValueError(
            "The shape of estimated sources and the true sources should match. reference shapes "
            f"= {[r.shape for r in refs]}, estimate shapes = {[e.shape for e in ests]}"
        )
    nsampl = refs[0].shape[0]
    if nsampl == 0 or refs[0].shape[1] == 0:
        raise ValueError("the signals are empty (no samples or no channels); nothing to score")
    if filters_len < 1:
        raise ValueError(f"filters_len must be >= 1, got {filters_len}")
    for name, value in (("window", window), ("hop", hop)):
        if not value > 0 or not (math.isinf(value) or float(value).is_integer()):
            raise ValueError(f"{name} must be a whole number of samples > 0 (or np.inf), got {value}")

    starts, length = _frames(window, hop, nsampl)
    if any(_is_silent(x) for x in refs):
        raise ValueError(
            "All the reference sources should be non-silent (not all-zeros), but at least one of "
            "the reference sources is all 0s, which introduces ambiguity to the evaluation. "
            "(Otherwise we can add infinitely many all-zero sources.)"
        )
    if any(_is_silent(x) for x in ests):
        raise ValueError(
            "All the estimated sources should be non-silent (not all-zeros), but at least one of "
            "the estimated sources is all 0s. Since we require each reference source to be "
            "non-silent, having a silent estimated source will result in an underdetermined system."
        )

    rr, re = _correlations(refs, ests, filters_len)
    filters_all, filters_own = _distortion_filters(rr, re, len(refs), refs[0].shape[1], filters_len)
    sdr, isr, sir, sar = _window_metrics(refs, ests, starts, length, filters_all, filters_own)

    # museval: NaN for every source in a window where any reference or estimate is silent
    silent = np.array([any(_is_silent(x[s:s + length]) for x in refs + ests) for s in starts], dtype=bool)
    for metric in (sdr, isr, sir, sar):
        metric[:, silent] = np.nan
    return sdr, isr, sir, sar


def evaluate(
    references: Sequence[np.ndarray],
    estimates: Sequence[np.ndarray],
    win: int = 44100,
    hop: int = 44100,
    padding: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``museval.evaluate(references, estimates, win, hop, mode="v4")``: estimates padded
    with zeros or cut to the references' length, then :func:`bss_eval`."""
    refs = _as_sources(references, "references")
    ests = _as_sources(estimates, "estimates")
    if padding and ests and refs:
        nsampl = refs[0].shape[0]
        ests = [_pad_or_truncate(e, nsampl) for e in ests]
    return bss_eval(refs, ests, win, hop)


def score_track(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    rate: float,
    win: float = 1.0,
    hop: float = 1.0,
) -> dict[str, dict[str, np.ndarray]]:
    """Frame-wise BSS Eval v4 scores of one track, as ``museval.eval_mus_track`` (mode v4).

    Parameters
    ----------
    references : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        True targets, in the track's order (museval's ``track.targets``).
    estimates : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        Estimates; targets without a reference are ignored, estimates of another length
        are padded with zeros or cut (as museval does).
    rate : float
        Sample rate in Hz; windows hold ``int(win * rate)`` samples, hops ``int(hop * rate)``.
    win, hop : float
        Window and hop in seconds.

    Returns
    -------
    dict of str to dict of str to np.ndarray
        Target -> {"SDR", "SIR", "ISR", "SAR"} -> one value per window (dB), targets in the
        order museval writes them: the targets other than the accompaniment scored together
        when there are at least two (vocals left out of the result when the accompaniment is
        there), then vocals and accompaniment scored as a pair. Empty (with museval's
        warning) when fewer than two targets can be scored.
    """
    result: dict[str, dict[str, np.ndarray]] = {}
    eval_targets = [key for key in references if key in estimates]
    window, step = int(win * rate), int(hop * rate)
    has_acc = all(x in eval_targets for x in ("vocals", "accompaniment"))
    if has_acc:
        eval_targets.remove("accompaniment")

    def run(targets: list[str]) -> dict[str, dict[str, np.ndarray]]:
        sdr, isr, sir, sar = evaluate([references[t] for t in targets], [estimates[t] for t in targets],
                                      win=window, hop=step)
        return {t: {"SDR": sdr[i], "SIR": sir[i], "ISR": isr[i], "SAR": sar[i]} for i, t in enumerate(targets)}

    if len(eval_targets) >= 2:
        for target, values in run(eval_targets).items():
            if not (target == "vocals" and has_acc):
                result[target] = values
    elif not has_acc:
        warnings.warn(UserWarning(
            "Incorrect usage of BSSeval : at least two estimates must be provided. Target score will be empty."
        ))
    if has_acc:
        result.update(run(["vocals", "accompaniment"]))
    return result


def track_store(
    references: Mapping[str, np.ndarray],
    estimates: Mapping[str, np.ndarray],
    rate: float,
    win: float = 1.0,
    hop: float = 1.0,
    track_name: str = "",
):
    """:func:`score_track` as a ``museval.TrackStore`` (``.json`` is museval's file)."""
    import museval

    store = museval.TrackStore(win=win, hop=hop, track_name=track_name)
    for target, values in score_track(references, estimates, rate, win, hop).items():
        store.add_target(target_name=target, values={m: values[m].tolist() for m in METRICS})
    return store


def eval_mus_track(track: Any, user_estimates: Mapping[str, np.ndarray], output_dir: str | None = None,
                   win: float = 1.0, hop: float = 1.0):
    """Drop-in for ``museval.eval_mus_track(track, user_estimates, output_dir, mode="v4", win, hop)``.

    Reads the references of ``track`` (a ``musdb.MultiTrack``) for the estimated targets
    only, scores them with :func:`track_store` and, with ``output_dir``, writes
    ``<output_dir>/<subset>/<name>.json`` as museval does.
    """
    import os

    references = {key: target.audio for key, target in track.targets.items() if key in user_estimates}
    store = track_store(references, user_estimates, track.rate, win, hop, track_name=track.name)
    if output_dir:
        store.validate()
        subset_path = os.path.join(output_dir, track.subset)
        os.makedirs(subset_path, exist_ok=True)
        with open(os.path.join(subset_path, track.name) + ".json", "w+") as f:
            f.write(store.json)
    return store


# --------------------------------------------------------------------------- inputs and windows


def _as_sources(sources, what: str) -> list[np.ndarray]:
    """List of (nb_samples, nb_channels) arrays (1-D -> one channel), dtypes kept."""
    if isinstance(sources, np.ndarray) and sources.ndim == 3:
        sources = list(sources)
    out = []
    for x in sources:
        x = np.asarray(x)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"{what}: each source must be (nb_samples, nb_channels), got shape {x.shape}")
        out.append(x)
    if not out:
        raise ValueError(f"{what}: no sources")
    return out


def _pad_or_truncate(x: np.ndarray, nsampl: int) -> np.ndarray:
    if x.shape[0] > nsampl:
        return x[:nsampl]
    if x.shape[0] < nsampl:
        return np.pad(x, [(0, nsampl - x.shape[0]), (0, 0)], mode="constant")
    return x


def _frames(window: float, hop: float, nsampl: int) -> tuple[list[int], int]:
    """Window starts and the (common) window length, as museval's ``Framing``: full windows
    only, or one window of the whole signals when they are not longer than a window."""
    if window < nsampl:
        window, hop = int(window), int(hop)
        nwin = (nsampl - window + hop) // hop
        return [t * hop for t in range(nwin)], window
    return [0], nsampl


def _is_silent(x: np.ndarray) -> bool:
    """museval's silence test: the sum over channels (in x's dtype) is 0 at every sample."""
    sequential = x.dtype.kind == "f" and x.shape[1] < 8  # what np.sum does for < 8 terms
    for a in range(0, x.shape[0], _CHUNK_SAMPLES):
        chunk = x[a:a + _CHUNK_SAMPLES]
        if sequential:
            total = chunk[:, 0].copy()
            for c in range(1, x.shape[1]):
                total += chunk[:, c]
        else:
            total = np.sum(chunk, axis=1)
        if total.any():
            return False
    return True


def _read_into(out: np.ndarray, sources: list[np.ndarray], start: int) -> np.ndarray:
    """Fill ``out`` (nsrc * nchan, n) with samples [start, start + n) of every channel of
    every source (source-major) as float64, zeros outside the signals."""
    nchan, nsampl = sources[0].shape[1], sources[0].shape[0]
    stop = start + out.shape[-1]
    a, b = max(start, 0), min(stop, nsampl)
    if a > start or b < stop or b <= a:
        out[...] = 0.0
    if b > a:
        for i, x in enumerate(sources):
            out[i * nchan:(i + 1) * nchan, a - start:b - start] = x[a:b].T
    return out


def _read(sources: list[np.ndarray], start: int, stop: int) -> np.ndarray:
    """:func:`_read_into` a new (nsrc * nchan, stop - start) array."""
    return _read_into(np.empty((len(sources) * sources[0].shape[1], stop - start)), sources, start)


# --------------------------------------------------------------------------- correlations


def _correlations(refs: list[np.ndarray], ests: list[np.ndarray], filters_len: int):
    """Cross-correlations of the whole signals at lags -(L-1)..(L-1).

    Returns ``rr`` (K, K, 2L-1) with ``rr[q, p, k + L - 1] = sum_n x_q[n + k] x_p[n]`` over
    reference channels q >= p (K = nsrc * nchan, source-major; entries q < p are not
    computed: museval takes both blocks of the Gram matrix from one correlation), and
    ``re`` (K, K, 2L-1) with ``re[q, e, k + L - 1] = sum_n x_q[n + k] s_e[n]`` over
    reference channels q and estimate channels e: what museval takes from full-length
    FFTs of 2^ceil(log2(N + L - 1)) points. Here: blocks of B samples of the right-hand
    signals, and the same block of the references extended by L - 1 samples on both
    sides, in FFTs of B + 2(L - 1) points; no circular wrap reaches the lags kept, so the
    products summed over all blocks and one short inverse FFT give the whole signals' lags.
    """
    L = filters_len
    nsampl = refs[0].shape[0]
    ext = 2 * (L - 1)
    nfft = min(_BLOCK_FFT, 1 << int(math.ceil(math.log2(nsampl + ext + 1))))
    if nfft <= ext:
        nfft = 1 << int(math.ceil(math.log2(ext + 2)))
    block = nfft - ext
    nblocks = -(-nsampl // block)
    per_chunk = max(1, min(nblocks, _CHUNK_SAMPLES // block))
    K = len(refs) * refs[0].shape[1]
    nfreq = nfft // 2 + 1
    # FFT inputs (block, channel, time), reused: the zero padding is written once
    xbuf = np.zeros((per_chunk, K, nfft))
    ybuf = np.zeros((per_chunk, 2 * K, nfft))  # estimates, then references
    span = np.empty((K, per_chunk * block + ext))
    # acc[q][e] = sum over blocks of X_q conj(Y_e), e over the estimates' channels and the
    # references' channels p <= q
    acc = [np.zeros((K + q + 1, nfreq), dtype=complex) for q in range(K)]
    prod = np.empty((2 * K, nfreq), dtype=complex)
    for p0 in range(0, nblocks, per_chunk):
        nb = min(per_chunk, nblocks - p0)
        start = p0 * block
        x = _read_into(span[:, :nb * block + ext], refs, start - (L - 1))
        segments = np.lib.stride_tricks.sliding_window_view(x, block + ext, axis=-1)[:, ::block][:, :nb]
        xbuf[:nb, :, :block + ext] = segments.transpose(1, 0, 2)
        ybuf[:nb, K:, :block] = x[:, L - 1:L - 1 + nb * block].reshape(K, nb, block).transpose(1, 0, 2)
        est = _read_into(span[:, :nb * block], ests, start)  # the references are copied by now
        ybuf[:nb, :K, :block] = est.reshape(K, nb, block).transpose(1, 0, 2)
        X = scipy.fft.rfft(xbuf[:nb], axis=-1)  # (nb, K, F)
        Y = scipy.fft.rfft(ybuf[:nb], axis=-1)  # (nb, 2K, F)
        np.conjugate(Y, out=Y)
        for p in range(nb):
            for q in range(K):
                m = K + q + 1
                np.multiply(X[p, q], Y[p, :m], out=prod[:m])
                acc[q] += prod[:m]
    rr = np.zeros((K, K, 2 * L - 1))
    re = np.empty((K, K, 2 * L - 1))
    for q in range(K):
        lags = scipy.fft.irfft(acc[q], n=nfft, axis=-1)[:, :2 * L - 1]
        re[q] = lags[:K]
        rr[q, :q + 1] = lags[K:]
    return rr, re


def _distortion_filters(rr: np.ndarray, re: np.ndarray, nsrc: int, nchan: int, filters_len: int):
    """museval's ``_compute_projection_filters`` for the whole track.

    Returns ``filters_all`` (nsrc_est, K, L, nchan): the filters projecting estimate j on
    all references (museval's ``C[j]`` reshaped source-major), and ``filters_own``
    (nsrc, nchan, L, nchan): estimate j on reference j only (museval's ``Cj[j, j, 0]``).
    """
    L = filters_len
    K = nsrc * nchan
    eps = np.finfo(float).eps
    # Gram matrix of the delayed references, museval's layout: rows (p, a), columns (q, b),
    # block (p, q)[a, b] = <x_p(. - a), x_q(. - b)> = r_qp(a - b); block (q, p) is its
    # transpose (museval fills both from one correlation, p <= q).
    lag_index = (np.arange(L)[:, None] - np.arange(L)[None, :]) + (L - 1)
    G = np.empty((K * L, K * L))
    for p in range(K):
        for q in range(p, K):
            block = rr[q, p][lag_index]
            G[p * L:(p + 1) * L, q * L:(q + 1) * L] = block
            if q != p:
                G[q * L:(q + 1) * L, p * L:(p + 1) * L] = block.T
    # D[(q, a), e] = <x_q(. - a), s_e> = re_qe(-a)
    D = re[:, :, (L - 1) - np.arange(L)].transpose(0, 2, 1).reshape(K * L, K)

    # museval solves (G + eps I) C = D for every estimate, and with G's block (j, j) for
    # estimate j on reference j alone; eps is added to the diagonal in place.
    diagonal = G.diagonal().copy()
    G.flat[::K * L + 1] += eps
    factor = _cholesky(G)
    C = _solve(G, D, diagonal, factor)  # (K * L, K): columns (estimate source, channel)
    filters_all = C.reshape(K, L, nsrc, nchan).transpose(2, 0, 1, 3)  # (jest, (i, ci), a, c)
    filters_own = np.empty((nsrc, nchan, L, nchan))
    for j in range(nsrc):
        rows = slice(j * nchan * L, (j + 1) * nchan * L)
        cols = slice(j * nchan, (j + 1) * nchan)
        block = G[rows, rows]
        # the leading block's Cholesky factor is the leading block of the whole one
        block_factor = (factor[0][rows, rows], factor[1]) if (j == 0 and factor is not None) else _cholesky(block)
        filters_own[j] = _solve(block, D[rows, cols], diagonal[rows], block_factor).reshape(nchan, L, nchan)
    return filters_all, filters_own


def _cholesky(A: np.ndarray):
    """Cholesky factor of A (scipy's ``cho_factor`` tuple), or None if A is not numerically
    positive definite."""
    import scipy.linalg

    try:
        return scipy.linalg.cho_factor(A, lower=False, overwrite_a=False, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def _solve(A: np.ndarray, D: np.ndarray, diagonal: np.ndarray, factor) -> np.ndarray:
    """Solve museval's ``(G + eps I) C = D``; ``A`` is G + eps I, ``diagonal`` G's diagonal.

    G is a Gram matrix (symmetric positive semi-definite), so a Cholesky factorisation
    (half an LU's work, one per track) solves the regularised system; where it fails
    (``factor`` None: A not numerically positive definite) museval's own LU solve is
    used, and its least-squares fallback on G when even that finds A singular.
    """
    import scipy.linalg

    if factor is not None:
        return scipy.linalg.cho_solve(factor, D, check_finite=False)
    try:
        return np.linalg.solve(A, D)
    except np.linalg.LinAlgError:
        G = A.copy()
        G.flat[::G.shape[0] + 1] = diagonal
        return np.linalg.lstsq(G, D)[0]


# --------------------------------------------------------------------------- windows


def _window_metrics(refs, ests, starts, length, filters_all, filters_own):
    """SDR, ISR, SIR, SAR (nsrc, nwin) of every window (silence not handled here).

    Per window and target j, as museval's ``_bss_decomp_mtifilt`` + ``_bss_crit`` (image
    mode), with s the reference window, P_j its projection through j's own filters and
    P the projection of all reference windows through estimate j's filters (each the
    full convolution of the window alone, window + L - 1 samples):
    SDR = |s|^2 / |est - s|^2, ISR = |s|^2 / |P_j - s|^2, SIR = |P_j|^2 / |P - P_j|^2,
    SAR = |P|^2 / |est - P|^2. The projections and their energies are computed from the
    windows' spectra (FFT length >= window + L - 1, so products are full convolutions).
    """
    nsrc, K, L, nchan = filters_all.shape
    nwin = len(starts)
    nfft = _fft_len(length + L - 1)
    nfreq = nfft // 2 + 1
    # filter spectra: H_all[j, q, c] (reference channel q -> output c), H_own[j, cj, c]
    H_all = scipy.fft.rfft(filters_all.transpose(0, 1, 3, 2), n=nfft, axis=-1)
    H_own = scipy.fft.rfft(filters_own.transpose(0, 1, 3, 2), n=nfft, axis=-1)
    even = nfft % 2 == 0

    def energy(Z: np.ndarray) -> np.ndarray:
        """Energy per window of the real signals whose half spectra are Z (nchan, nw, F)
        (Parseval: bins 1..F-2, and F-1 when nfft is odd, stand for two)."""
        flat = Z.view(np.float64)
        total = 2.0 * _sum_squares(flat).sum(axis=0)
        total -= (flat[..., 0] * flat[..., 0]).sum(axis=0)  # DC (imaginary part 0)
        if even:
            total -= (flat[..., -2:] * flat[..., -2:]).sum(axis=(0, 2))  # Nyquist bin
        return total / nfft

    out = {m: np.empty((nsrc, nwin)) for m in OUTPUT_ORDER}
    per_chunk = max(1, min(nwin, _WINDOWS_CHUNK_SAMPLES // max(length, 1)))
    buf = np.zeros((2 * K, per_chunk, nfft))  # references then estimates, zero padded
    own = np.empty((nchan, per_chunk, nfreq), dtype=complex)
    full = np.empty_like(own)
    diff = np.empty_like(own)
    prod = np.empty((per_chunk, nfreq), dtype=complex)
    for t0 in range(0, nwin, per_chunk):
        chunk = starts[t0:t0 + per_chunk]
        nw = len(chunk)
        for w, s in enumerate(chunk):
            _read_into(buf[:K, w, :length], refs, s)
            _read_into(buf[K:, w, :length], ests, s)
        r, e = buf[:K, :nw, :length], buf[K:, :nw, :length]
        energy_ref = _sum_squares(r).reshape(nsrc, nchan, nw).sum(axis=1)
        d = e - r
        energy_diff = _sum_squares(d).reshape(nsrc, nchan, nw).sum(axis=1)
        del d
        Z = scipy.fft.rfft(buf[:, :nw], axis=-1)  # (2K, nw, F)
        R, E = Z[:K], Z[K:]
        sl = slice(t0, t0 + nw)
        o, f, df, pr = own[:, :nw], full[:, :nw], diff[:, :nw], prod[:nw]
        for j in range(nsrc):
            for c in range(nchan):
                for cj in range(nchan):
                    target = o[c] if cj == 0 else pr
                    np.multiply(H_own[j, cj, c], R[j * nchan + cj], out=target)
                    if cj:
                        o[c] += pr
                for q in range(K):
                    target = f[c] if q == 0 else pr
                    np.multiply(H_all[j, q, c], R[q], out=target)
                    if q:
                        f[c] += pr
            S = R[j * nchan:(j + 1) * nchan]
            e_spat = energy(np.subtract(o, S, out=df))
            e_interf = energy(np.subtract(f, o, out=df))
            e_artif = energy(np.subtract(E[j * nchan:(j + 1) * nchan], f, out=df))
            out["SDR"][j, sl] = _db(energy_ref[j], energy_diff[j])
            out["ISR"][j, sl] = _db(energy_ref[j], e_spat)
            out["SIR"][j, sl] = _db(energy(o), e_interf)
            out["SAR"][j, sl] = _db(energy(f), e_artif)
    return out["SDR"], out["ISR"], out["SIR"], out["SAR"]


def _sum_squares(x: np.ndarray) -> np.ndarray:
    """Sum of squares along the last axis (``np.vecdot``, a BLAS dot per row, on numpy >= 2)."""
    if hasattr(np, "vecdot"):
        return np.vecdot(x, x, axis=-1)
    return np.einsum("...n,...n->...", x, x)


def _fft_len(n: int) -> int:
    """A fast FFT length >= n: the smallest 2^k * m, m in (1, 3, 5, 9, 15, 45) (pocketfft is
    fastest on powers of two with small odd factors; 44.1 kHz windows: 46080)."""
    return min(m << max(0, int(math.ceil(math.log2(n / m)))) for m in (1, 3, 5, 9, 15, 45))


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """museval's ``_safe_db``: inf where den == 0, else 10 log10(num / den)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10 * np.log10(num / den)
    return np.where(den == 0, np.inf, out)


__all__ = ["FILTERS_LEN", "OUTPUT_ORDER", "bss_eval", "evaluate", "score_track", "track_store", "eval_mus_track"]
