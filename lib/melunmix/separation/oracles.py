"""Oracle separations and MIX exactly as SiSEC 2018 computed them (sigsep-mus-oracle).

The reference rows of the MUSDB18 results table of SiSEC 2018 [1]_ (MIX, IRM1, IRM2,
IBM, MWF) come from the scripts of https://github.com/sigsep/sigsep-mus-oracle
(``MIX.py``, ``IRM.py``, ``IBM.py``, ``MWF.py``). This module computes the same
estimates, so that the study's oracle rows can sit beside the published medians. Every
oracle works on the four MUSDB18 stems (:data:`SOURCES`), each channel separately unless
said otherwise, and the accompaniment estimate is the sum of the drums, bass and other
estimates (in the time domain).

Common to all but MIX: STFT ``scipy.signal.stft(x, nperseg=2048)`` (periodic Hann
window, hop 1024, zero boundary extension and padding, ``"spectrum"`` scaling: scipy's
defaults), inverse ``scipy.signal.istft``, cropped to the track length;
``eps = np.finfo(np.float64).eps``; ``X`` is the STFT of the track's own mixture (not
of the sum of the stems), ``Y_j`` that of stem ``j``.

=======  ==========================================================================
name     estimate of stem ``j``, per time-frequency point (``MIX``: per sample)
=======  ==========================================================================
MIX      ``mixture / 4`` (``MIX.py``: ``track.audio / len(track.sources)``): vocals
         ``mix / 4``, accompaniment ``3/4 mix``. The gain matters: BSS Eval v4 (museval)
         compares with the true source itself, not with its projection.
IRM1     ``X * |Y_j| / (eps + sum_k |Y_k|)`` (``IRM.py`` with ``alpha=1``)
IRM2     ``X * |Y_j|^2 / (eps + sum_k |Y_k|^2)`` (``IRM.py`` with ``alpha=2``)
IBM      ``X * M_j`` with ``M_j = 1`` where ``|Y_j| / (eps + |X|) > 0.5``, ``0`` where
         it is ``< 0.5`` (``IBM.py``, ``alpha=1``, ``theta=0.5``; SiSEC's "IBM1")
MWF      multichannel Wiener filter ``G_j X``, ``G_j = P_j R_j Cxx^-1`` (``MWF.py``):
         both channels jointly, time-invariant spatial covariances ``R_j`` [2]_
=======  ==========================================================================

MWF in detail (``I`` channels, per frequency ``f`` and frame ``t``): ``Rjj = Y_j Y_j^H``;
``P_j = mean_i |Y_ji|^2``; ``R_j(f) = mean_t Rjj / (eps + P_j)``; ``R_j`` normalised
(see below) plus ``eps * Id``; ``P_j = (1/I) Re tr(R_j^-1 Rjj)``; ``Cxx = sum_j P_j R_j``;
``G_j = P_j R_j Cxx^-1``. Inverses are the explicit 2x2 formula with ``eps`` added to
the determinant: ``inv(M) = adj(M) / (eps + det M)``.

Details the summary of the definitions leaves open, settled from the published scripts
-------------------------------------------------------------------------------------
- **MWF normalisation of R_j.** The intent is "scale to trace I", but ``MWF.py`` writes
  ``R * I / np.trace(R)`` with ``R`` shaped ``(F, I, I)``; ``np.trace`` then sums over
  the first two axes, so column ``k`` of every ``R_j(f)`` is divided by the same number
  ``c_k = sum_{i < min(F, I)} R_j(i)[i, k]`` (for stereo: ``R_j(0)[0, k] +
  R_j(1)[1, k]``). That is what produced the published MWF numbers, so it is what we
  compute (:func:`sigsep_trace`). It is not a harmless rescaling: for a rank-one
  (panned mono) stem both columns of ``R_j`` become equal, so such stems all share the
  row space ``(1, 1)`` and MWF cannot tell them apart; on full-rank stems it changes
  the filter too (on random test stems, by ~2 dB of SDR against the per-bin trace
  normalisation). One departure: where ``c_k`` is exactly 0 (a stem
  silent in a channel or altogether) ``MWF.py`` divides 0 by 0 and returns NaN for
  every stem of the track; we leave that column unscaled (it is zero), so a silent
  stem gets a silent estimate and the others are unaffected.
- **MWF on mono.** ``MWF.py``'s 2x2 inverse fails on one channel; we use the 1x1 case
  of the same rule, ``1 / (eps + m)``. More than two channels are refused (the 2x2
  formula does not apply).
- **MWF precision.** ``MWF.py`` stores the gains ``G_j`` as complex64 (relative rounding
  ~6e-8, far below anything BSS Eval resolves); we keep complex128 throughout.
- **IBM ties.** ``IBM.py`` sets the mask to 1 where the ratio is ``> theta`` and to 0
  where it is ``< theta``; a ratio exactly equal to ``theta`` keeps its value 0.5. We do
  the same (it practically never happens on real audio).
- **MIX.** The last revision of ``MIX.py`` (``/ len(track.sources)`` = 4, accompaniment
  the sum of the three other stems); an earlier one divided by ``len(track.targets)``
  and set the accompaniment to that directly.
- **Short tracks.** scipy shrinks the frame to the signal length below 2048 samples; we
  refuse such tracks instead (46 ms at 44.1 kHz).
- **Memory.** The STFTs are computed and inverted in blocks of frames: each block's
  frames are exactly the corresponding frames of the whole-signal STFT (same samples,
  same scipy call), and every output sample is overlap-added from the same frames as in
  the whole-signal ``istft``, so the result equals the whole-signal computation (to
  rounding) while any track needs only about 100 MB beyond its inputs and outputs
  (the two outputs of a 10-minute stereo song: 0.85 GB). MWF makes two passes: the
  time-invariant ``R_j`` first, then the filter.

References
----------
.. [1] F.-R. Stöter, A. Liutkus, N. Ito, "The 2018 Signal Separation Evaluation Campaign",
   LVA/ICA 2018, LNCS 10891, pp. 293-305; oracle code: https://github.com/sigsep/sigsep-mus-oracle.
.. [2] N. Q. K. Duong, E. Vincent and R. Gribonval, "Under-determined reverberant audio
   source separation using a full-rank spatial covariance model", IEEE TASLP 18(7), 2010.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, Mapping

import numpy as np

from ..base.names import ORACLES, SCORED_TARGETS, SOURCES

#: Which definition the estimates follow (recorded with the scores).
DEFINITION = "sigsep-mus-oracle (SiSEC 2018)"
#: STFT frame length of the oracles (``scipy.signal.stft(x, nperseg=2048)``).
NPERSEG = 2048
#: STFT hop: scipy's default overlap of half a frame.
HOP = NPERSEG // 2
#: Spectrogram exponent of the ideal ratio masks.
IRM_ALPHA = {"IRM1": 1, "IRM2": 2}
#: Spectrogram exponent and threshold of the ideal binary mask (SiSEC's IBM1).
IBM_ALPHA = 1
IBM_THRESHOLD = 0.5
#: STFT frames per block (about 3 s at 44.1 kHz): bounds the memory of long tracks.
BLOCK_FRAMES = 128


def check_oracle_name(name: str) -> str:
    """Return ``name`` if it is an oracle; otherwise raise a ValueError listing them."""
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; valid oracles: {list(ORACLES)}")
    return name


def oracle_estimates(
    name: str,
    mixture: np.ndarray,
    stems: Mapping[str, np.ndarray],
    eps: float | None = None,
) -> dict[str, np.ndarray]:
    """SiSEC 2018's oracle (or MIX) estimates of vocals and accompaniment for one track.

    Parameters
    ----------
    name : str
        One of :data:`ORACLES`: ``"MIX"``, ``"IRM1"``, ``"IRM2"``, ``"IBM"``, ``"MWF"``.
    mixture : np.ndarray, shape (nb_samples, nb_channels)
        The track's mixture (museval's layout, time first); at least 2048 samples.
    stems : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        The true ``"vocals"``, ``"drums"``, ``"bass"`` and ``"other"`` (:data:`SOURCES`);
        other keys are ignored.
    eps : float, optional
        Regulariser of the masks and inverses; default ``np.finfo(np.float64).eps``,
        SiSEC's.

    Returns
    -------
    dict of str to np.ndarray, shape (nb_samples, nb_channels), float64
        ``"vocals"`` and ``"accompaniment"`` (sum of the drums, bass and other
        estimates) with the mixture's exact length.

    Raises
    ------
    ValueError
        An unknown oracle, a missing stem, a stem shaped unlike the mixture, a mixture
        that is not (nb_samples, nb_channels) or shorter than one STFT frame, or MWF on
        more than two channels.
    """
    check_oracle_name(name)
    mixture, stems = _checked_inputs(name, mixture, stems)
    eps = float(np.finfo(np.float64).eps if eps is None else eps)
    if name == "MIX":
        # MIX.py: every stem's estimate is the mixture over the number of stems.
        quarter = np.asarray(mixture, dtype=np.float64) / len(SOURCES)
        return _sources({stem: quarter for stem in SOURCES})
    if name == "MWF":
        return _separate(mixture, stems, _mwf_filter(stems, mixture.shape, eps))
    if name == "IBM":
        return _separate(mixture, stems, _ibm_filter(eps))
    return _separate(mixture, stems, _irm_filter(IRM_ALPHA[name], eps))


def sigsep_trace(R: np.ndarray) -> np.ndarray:
    """``np.trace`` of a stack of spatial covariances ``(nb_bins, I, I)``, as ``MWF.py`` uses it.

    Returns the ``(I,)`` vector ``c_k = sum_{i < min(nb_bins, I)} R[i, i, k]`` (numpy's
    default axes 0 and 1), which ``MWF.py`` divides the columns of every ``R(f)`` by.
    """
    return np.trace(R)


# --------------------------------------------------------------------------- inputs


def _checked_inputs(name: str, mixture, stems) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    mixture = np.asarray(mixture)
    if mixture.ndim != 2 or mixture.shape[1] < 1:
        raise ValueError(
            f"the mixture must have shape (nb_samples, nb_channels) (time first, as museval), got {mixture.shape}"
        )
    if mixture.shape[0] < NPERSEG:
        raise ValueError(
            f"the mixture has {mixture.shape[0]} samples; the SiSEC oracles need at least one STFT frame "
            f"({NPERSEG} samples)"
        )
    if name == "MWF" and mixture.shape[1] > 2:
        raise ValueError(
            f"the MWF oracle handles mono or stereo tracks (SiSEC's 2x2 inverses), got {mixture.shape[1]} channels"
        )
    if not isinstance(stems, Mapping):
        raise ValueError(
            f"stems must be a mapping of stem name to audio with keys {list(SOURCES)}, got {type(stems).__name__}"
        )
    missing = [stem for stem in SOURCES if stem not in stems]
    if missing:
        raise ValueError(
            f"the oracle {name} is defined on the four MUSDB18 stems {list(SOURCES)}; missing {missing} "
            f"(got {sorted(stems)})"
        )
    checked = {}
    for stem in SOURCES:
        audio = np.asarray(stems[stem])
        if audio.shape != mixture.shape:
            raise ValueError(
                f"stem {stem!r} has shape {audio.shape} but the mixture {mixture.shape}; every stem must have "
                "the mixture's shape (nb_samples, nb_channels)"
            )
        checked[stem] = audio
    # No float64 copies of whole tracks: every block is converted as it is read.
    return mixture, checked


def _sources(per_stem: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Vocals and accompaniment (drums + bass + other, summed in this order as the scripts do)."""
    accompaniment = per_stem["drums"] + per_stem["bass"] + per_stem["other"]
    return {"vocals": np.array(per_stem["vocals"], dtype=np.float64), "accompaniment": accompaniment}


# --------------------------------------------------------------------------- STFT in blocks


def _nb_frames(nb_samples: int) -> int:
    """Frames of ``scipy.signal.stft(x, nperseg=NPERSEG)`` for ``nb_samples >= NPERSEG``."""
    extended = nb_samples + 2 * (NPERSEG // 2)  # boundary="zeros"
    padded = extended + (-(extended - NPERSEG) % HOP) % NPERSEG  # padded=True
    return (padded - NPERSEG) // HOP + 1


def _frame_blocks(nb_frames: int) -> Iterator[tuple[int, int]]:
    for start in range(0, nb_frames, BLOCK_FRAMES):
        yield start, min(start + BLOCK_FRAMES, nb_frames)


def _stft_frames(audio: np.ndarray, first: int, last: int) -> np.ndarray:
    """Frames ``first..last-1`` of ``scipy.signal.stft(audio.T, nperseg=NPERSEG)[-1]``.

    ``audio`` is (nb_samples, nb_channels); returns (nb_channels, nb_bins, last - first).
    Frame ``t`` covers samples ``t * HOP - NPERSEG // 2`` onwards of the zero-extended
    signal, so the same scipy call on just those samples gives the same numbers.
    """
    from scipy.signal import stft

    offset = NPERSEG // 2
    start, stop = first * HOP - offset, (last - 1) * HOP + NPERSEG - offset
    segment = np.zeros((audio.shape[1], stop - start))
    lo, hi = max(start, 0), min(stop, audio.shape[0])
    if hi > lo:
        segment[:, lo - start:hi - start] = audio[lo:hi].T
    return stft(segment, nperseg=NPERSEG, boundary=None, padded=False)[-1]


def _istft_samples(Z: np.ndarray, first: int, start: int, stop: int) -> np.ndarray:
    """Samples ``start..stop-1`` of the ``scipy.signal.istft`` of the whole STFT.

    ``Z`` (nb_channels, nb_bins, nb_frames) holds frames ``first`` onwards, including
    every frame that overlaps the samples asked for; returns (stop - start, nb_channels).
    """
    from scipy.signal import istft

    with warnings.catch_warnings():
        # The block's own edges lack a neighbour frame (the NOLA warning); the samples
        # kept have all their frames, so their normalisation is the whole signal's.
        warnings.filterwarnings("ignore", message="NOLA condition failed")
        signal = istft(Z, nperseg=NPERSEG, boundary=False)[1]
    offset = start + NPERSEG // 2 - first * HOP
    return signal[:, offset:offset + stop - start].T


BlockFilter = Callable[[np.ndarray, dict[str, np.ndarray]], dict[str, np.ndarray]]


def _separate(mixture: np.ndarray, stems: Mapping[str, np.ndarray], block_filter: BlockFilter) -> dict[str, np.ndarray]:
    """Apply a time-frequency filter block by block; returns vocals and accompaniment.

    ``block_filter(X, Y)`` gets the mixture STFT ``X`` and the stems' ``Y`` of a block of
    frames, each (nb_channels, nb_bins, nb_frames), and returns every stem's estimate.
    """
    nb_samples, nb_channels = mixture.shape
    out = {source: np.zeros((nb_samples, nb_channels)) for source in SCORED_TARGETS}
    for a, b in _frame_blocks(_nb_frames(nb_samples)):
        # Samples whose frames all lie in a-1..b-1: padded positions [a*HOP, b*HOP).
        start, stop = max(a * HOP - NPERSEG // 2, 0), min(b * HOP - NPERSEG // 2, nb_samples)
        if stop <= start:
            continue
        first = max(a - 1, 0)
        X = _stft_frames(mixture, first, b)
        Y = {stem: _stft_frames(stems[stem], first, b) for stem in SOURCES}
        estimates = block_filter(X, Y)
        per_stem = {stem: _istft_samples(estimates[stem], first, start, stop) for stem in SOURCES}
        for source, audio in _sources(per_stem).items():
            out[source][start:stop] = audio
    return out


# --------------------------------------------------------------------------- masks


def _irm_filter(alpha: int, eps: float) -> BlockFilter:
    def block_filter(X, Y):
        # IRM.py: P_j = |Y_j|^alpha, model = eps + sum_j P_j, estimate X * P_j / model.
        P = {stem: np.abs(Y[stem]) ** alpha for stem in SOURCES}
        model = eps
        for stem in SOURCES:
            model = model + P[stem]
        return {stem: X * (P[stem] / model) for stem in SOURCES}

    return block_filter


def _ibm_filter(eps: float) -> BlockFilter:
    def block_filter(X, Y):
        mix_spec = eps + np.abs(X) ** IBM_ALPHA
        estimates = {}
        for stem in SOURCES:
            ratio = np.abs(Y[stem]) ** IBM_ALPHA / mix_spec
            # IBM.py: 1 above theta, 0 below; a ratio equal to theta keeps its value.
            mask = np.where(ratio > IBM_THRESHOLD, 1.0, np.where(ratio < IBM_THRESHOLD, 0.0, ratio))
            estimates[stem] = X * mask
        return estimates

    return block_filter


# --------------------------------------------------------------------------- MWF


def _invert(M: list[list[np.ndarray]], eps: float) -> list[list[np.ndarray]]:
    """Inverse of a 1x1 or 2x2 matrix of arrays (``M[i][k]``, all one shape), ``eps`` added to the determinant."""
    if len(M) == 1:
        return [[1.0 / (eps + M[0][0])]]
    inv_det = 1.0 / (eps + M[0][0] * M[1][1] - M[0][1] * M[1][0])
    return [[inv_det * M[1][1], -inv_det * M[0][1]],
            [-inv_det * M[1][0], inv_det * M[0][0]]]


def _weighted_covariance(Y: np.ndarray, eps: float) -> np.ndarray:
    """``sum_t Rjj / (eps + P_j)`` over the frames of a block: (nb_bins, I, I)."""
    nb_channels = Y.shape[0]
    P = np.mean(np.abs(Y) ** 2, axis=0)
    total = np.empty((Y.shape[1], nb_channels, nb_channels), dtype=np.complex128)
    for i1 in range(nb_channels):
        for i2 in range(nb_channels):
            total[:, i1, i2] = np.sum(Y[i1] * np.conj(Y[i2]) / (eps + P), axis=1)
    return total


def _spatial_covariances(stems: Mapping[str, np.ndarray], shape: tuple[int, int], eps: float) -> dict[str, np.ndarray]:
    """Every stem's regularised time-invariant spatial covariance ``R_j``: (nb_bins, I, I)."""
    nb_samples, nb_channels = shape
    nb_frames = _nb_frames(nb_samples)
    R = {}
    for stem in SOURCES:
        total = 0
        for a, b in _frame_blocks(nb_frames):
            total = total + _weighted_covariance(_stft_frames(stems[stem], a, b), eps)
        mean = total / nb_frames
        # MWF.py: R * I / np.trace(R) (see the module docstring); 0 / 0 left as 0.
        trace = sigsep_trace(mean)
        scale = np.divide(nb_channels, trace, out=np.ones_like(trace), where=trace != 0)
        R[stem] = mean * scale + eps * np.eye(nb_channels)[None]
    return R


def _mwf_filter(stems: Mapping[str, np.ndarray], shape: tuple[int, int], eps: float) -> BlockFilter:
    # Matrices as nested lists of contiguous arrays, M[i][k]: numpy is slow on stacks of
    # 2x2 matrices and on the strided views of an (..., I, I) array.
    nb_channels = shape[1]
    channels = range(nb_channels)
    R = {stem: [[Rj[:, i, k][:, None] for k in channels] for i in channels]  # (nb_bins, 1) each
         for stem, Rj in _spatial_covariances(stems, shape, eps).items()}
    R_inv = {stem: _invert(R[stem], eps) for stem in SOURCES}

    def block_filter(X, Y):
        # PSD refined with the spatial covariance: P_j = (1/I) Re tr(R_j^-1 Rjj).
        P = {}
        for stem in SOURCES:
            P[stem] = 0
            for i1 in channels:
                for i2 in channels:
                    Rjj = Y[stem][i2] * np.conj(Y[stem][i1])  # Rjj[i2, i1]
                    P[stem] = P[stem] + np.real(R_inv[stem][i1][i2] * Rjj) / nb_channels
        Cxx = [[sum(P[stem] * R[stem][i][k] for stem in SOURCES) for k in channels] for i in channels]
        Cxx_inv = _invert(Cxx, eps)
        estimates = {}
        for stem in SOURCES:
            SR = [[P[stem] * R[stem][i][k] for k in channels] for i in channels]
            gain = [[sum(SR[i][m] * Cxx_inv[m][k] for m in channels) for k in channels] for i in channels]
            # estimate[i] = sum_k G[i, k] X[k]
            estimates[stem] = np.stack([sum(gain[i][k] * X[k] for k in channels) for i in channels])
        return estimates

    return block_filter


__all__ = [
    "DEFINITION", "NPERSEG", "HOP", "IRM_ALPHA", "IBM_ALPHA",
    "IBM_THRESHOLD", "check_oracle_name", "oracle_estimates", "sigsep_trace",
]
