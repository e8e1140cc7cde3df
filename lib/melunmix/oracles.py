"""Oracle separations: what a mask-based method could reach if it knew the true sources.

Each oracle builds its estimates of the two sources of the karaoke task, ``vocals`` and
``accompaniment``, from the true source signals, through the same STFT, ISTFT and Wiener
code the models use (:mod:`melunmix.features`, :mod:`melunmix.wiener`). They bound what
a model that predicts a magnitude mask on this STFT can score, as the oracles of SiSEC
2018 [1]_ do for MUSDB18.

=======  ===============================================================================
name     estimate of source ``j`` (``x`` mixture STFT, ``s_j`` source STFT, per channel)
=======  ===============================================================================
MIX      the mixture waveform itself, for both sources (no STFT; the floor of the table)
IRM1     ``x * |s_j| / sum_k |s_k|``: ideal ratio mask of magnitudes
IRM2     ``x * |s_j|^2 / sum_k |s_k|^2``: ideal ratio mask of powers (Wiener-like)
IBM      ``x * [|s_j| / sum_k |s_k| >= 0.5]``: ideal binary mask (SiSEC's IBM1,
         ``alpha = 1``, ``theta = 0.5``); with two sources each bin goes to the louder one
MWF      oracle multichannel Wiener filter: ``v_j R_j C_x^-1 x`` with ``v_j``, ``R_j``
         fitted to the true complex source STFTs (one step of
         :func:`melunmix.wiener.expectation_maximization` started from the true sources)
=======  ===============================================================================

Differences from the SiSEC oracles, all deliberate: the masks are computed from the two
sources of the task (vocals and accompaniment) rather than from the four MUSDB18 stems,
and the STFT is the study's (``n_fft``, ``n_hop`` of the profile, Hann window) so that
the bound applies to the models' own time-frequency grid.

Why MWF starts from the true complex STFTs and not from :func:`melunmix.wiener.wiener`
with the true magnitudes: ``wiener`` gives the magnitudes the mixture's phase before
fitting ``R_j``, so the spatial covariances would be those of the mixture, not of the
sources, and the result would not be the oracle filter of [1]_, [2]_. Starting the EM
from the true sources makes its single iteration compute exactly the oracle ``v_j`` and
``R_j``; more iterations would refit them to estimates and move away from the oracle.

References
----------
.. [1] F.-R. Stöter, A. Liutkus, N. Ito, "The 2018 Signal Separation Evaluation Campaign",
   LVA/ICA 2018 (oracles of https://github.com/sigsep/sigsep-mus-oracle).
.. [2] N. Q. K. Duong, E. Vincent and R. Gribonval, "Under-determined reverberant audio
   source separation using a full-rank spatial covariance model", IEEE TASLP 18(7), 2010.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: Oracle names, in the order SiSEC reports them (best first).
ORACLES = ("IRM2", "MWF", "IRM1", "IBM", "MIX")
#: The sources every oracle estimates.
SOURCES = ("vocals", "accompaniment")
#: Threshold of the binary mask on the magnitude ratio (SiSEC's IBM1).
IBM_THRESHOLD = 0.5


def check_oracle_name(name: str) -> str:
    """Return ``name`` if it is an oracle; otherwise raise a ValueError listing them."""
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; valid oracles: {list(ORACLES)}")
    return name


def oracle_estimates(
    name: str,
    mixture: np.ndarray,
    references: Mapping[str, np.ndarray],
    n_fft: int = 4096,
    n_hop: int = 1024,
    eps: float = 1e-10,
) -> dict[str, np.ndarray]:
    """Oracle estimates of vocals and accompaniment.

    Parameters
    ----------
    name : str
        One of :data:`ORACLES`: ``"MIX"``, ``"IRM1"``, ``"IRM2"``, ``"IBM"``, ``"MWF"``.
    mixture : np.ndarray, shape (nb_samples, nb_channels)
        Mixture waveform (museval's layout).
    references : dict of str to np.ndarray, shape (nb_samples, nb_channels)
        True ``"vocals"`` and ``"accompaniment"`` waveforms, same shape as ``mixture``.
    n_fft, n_hop : int
        STFT frame and hop in samples (the profile's, as the models use).
    eps : float
        Added to mask denominators (silent bins give 0, not NaN) and the Wiener
        regularisation.

    Returns
    -------
    dict of str to np.ndarray, shape (nb_samples, nb_channels), float32
        ``"vocals"`` and ``"accompaniment"`` estimates with the mixture's exact length.
    """
    import torch

    from .features import ISTFT, STFT

    check_oracle_name(name)
    mixture = np.asarray(mixture)
    if mixture.ndim != 2:
        raise ValueError(f"mixture must have shape (nb_samples, nb_channels), got {mixture.shape}")
    for source in SOURCES:
        if source not in references:
            raise ValueError(f"the oracle {name} needs the true {source!r}; got {sorted(references)}")
        if np.shape(references[source]) != mixture.shape:
            raise ValueError(
                f"true {source!r} has shape {np.shape(references[source])}, the mixture {mixture.shape}; "
                "they must be equal"
            )
    if name == "MIX":
        return {source: mixture.astype(np.float32, copy=True) for source in SOURCES}

    nb_samples = mixture.shape[0]
    stft, istft = STFT(n_fft, n_hop), ISTFT(n_fft, n_hop)

    def spectrogram(audio: np.ndarray) -> torch.Tensor:
        # (nb_samples, nb_channels) -> (nb_channels, nb_bins, nb_frames) complex64
        return stft(torch.as_tensor(np.ascontiguousarray(audio.T), dtype=torch.float32))

    with torch.no_grad():
        X = spectrogram(mixture)
        S = [spectrogram(np.asarray(references[source])) for source in SOURCES]
        if name == "MWF":
            Y = _oracle_mwf(X, S, eps)
        else:
            power = 2.0 if name == "IRM2" else 1.0
            P = [s.abs() ** power for s in S]
            total = eps + sum(P)
            masks = [p / total for p in P]
            if name == "IBM":
                masks = [(m >= IBM_THRESHOLD).to(m.dtype) for m in masks]
            Y = [X * m for m in masks]
        return {
            source: istft(y, length=nb_samples).T.contiguous().numpy()
            for source, y in zip(SOURCES, Y)
        }


def _oracle_mwf(X, S, eps: float):
    """Oracle multichannel Wiener filter on STFTs shaped (nb_channels, nb_bins, nb_frames)."""
    import torch

    from .wiener import expectation_maximization

    # wiener's layout: (nb_frames, nb_bins, nb_channels[, nb_sources])
    x = X.permute(2, 1, 0)
    y = torch.stack([s.permute(2, 1, 0) for s in S], dim=-1)
    # Same numerical scaling as melunmix.wiener.wiener, so eps means the same thing.
    scale = max(1.0, float(x.abs().max()) / 10.0)
    y, _, _ = expectation_maximization(y / scale, x / scale, iterations=1, eps=eps)
    y = y * scale
    return [y[..., j].permute(2, 1, 0) for j in range(len(S))]
