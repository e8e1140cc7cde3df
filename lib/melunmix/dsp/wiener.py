"""Multichannel Wiener filtering of source magnitude estimates (soft masks + EM).

A separation model predicts one magnitude spectrogram per source; this module turns
those magnitudes into complex STFTs of the sources that add up (approximately, or
exactly with a residual source) to the mixture and that respect the mixture's
inter-channel correlations:

1. initial estimates: each source magnitude with the mixture phase, or soft (ratio)
   masks ``mix * v_j / sum_k v_k``; optionally a residual source ``mix - sum_j y_j``;
2. ``iterations`` rounds of the simplified EM of [1]_ (after [2]_, [3]_, [4]_): a power
   spectral density ``v_j(t, f)`` (channel average of ``|y_j|^2``) and a spatial
   covariance ``R_j(f)`` per source, the mixture model ``C_x = sum_j v_j R_j + sqrt(eps) I``
   and the posterior means ``y_j = v_j R_j C_x^-1 x``.

Layout is norbert's / Open-Unmix's: complex STFTs ``(nb_frames, nb_bins, nb_channels)``
and sources in the last dimension. Everything is torch on complex dtypes (``complex64``
or ``complex128``), on whatever device the inputs live.

References
----------
.. [1] S. Uhlich, M. Porcu, F. Giron, M. Enenkl, T. Kemp, N. Takahashi and
   Y. Mitsufuji, "Improving music source separation based on deep neural networks
   through data augmentation and network blending", ICASSP 2017.
.. [2] A. Nugraha, A. Liutkus and E. Vincent, "Multichannel audio source separation
   with deep neural networks", IEEE/ACM TASLP 24(9), 1652-1664, 2016.
.. [3] A. Nugraha, A. Liutkus and E. Vincent, "Multichannel music separation with deep
   neural networks", EUSIPCO 2016.
.. [4] A. Liutkus, R. Badeau and G. Richard, "Kernel additive models for source
   separation", IEEE TSP 62(16), 4298-4310, 2014.
.. [5] D. Fitzgerald, A. Liutkus and R. Badeau, "Projection-based demixing of spatial
   audio", IEEE/ACM TASLP 24(9), 1560-1572, 2016.
.. [6] N. Q. K. Duong, E. Vincent and R. Gribonval, "Under-determined reverberant audio
   source separation using a full-rank spatial covariance model", IEEE TASLP 18(7),
   1830-1840, 2010.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "wiener",
    "softmask",
    "mixture_phase",
    "add_residual",
    "expectation_maximization",
    "local_gaussian_model",
    "invert",
]


def _check_mixture(mix_stft: Tensor) -> None:
    if not torch.is_tensor(mix_stft) or not mix_stft.is_complex():
        raise ValueError(
            "mix_stft must be a complex tensor (nb_frames, nb_bins, nb_channels); got "
            f"{getattr(mix_stft, 'dtype', type(mix_stft).__name__)}. Use a complex STFT "
            "(torch.stft(..., return_complex=True) or torch.view_as_complex on a real view)"
        )
    if mix_stft.ndim != 3:
        raise ValueError(
            "mix_stft must have shape (nb_frames, nb_bins, nb_channels), got "
            f"{tuple(mix_stft.shape)}"
        )


def _check_sources(y: Tensor, mix_stft: Tensor, name: str, complex_expected: bool) -> None:
    if not torch.is_tensor(y) or y.ndim != 4:
        raise ValueError(
            f"{name} must have shape (nb_frames, nb_bins, nb_channels, nb_sources), got "
            f"{tuple(getattr(y, 'shape', ()))}"
        )
    if y.is_complex() != complex_expected:
        kind = "complex STFTs" if complex_expected else "real magnitudes"
        raise ValueError(f"{name} must hold {kind}, got dtype {y.dtype}")
    nb_channels = mix_stft.shape[2]
    if y.shape[:2] != mix_stft.shape[:2] or y.shape[2] not in (1, nb_channels):
        raise ValueError(
            f"{name} has shape {tuple(y.shape)}, which does not match mix_stft "
            f"{tuple(mix_stft.shape)}: expected (nb_frames, nb_bins, 1 or nb_channels, nb_sources) "
            "with the mixture's frames and bins"
        )
    if y.shape[-1] < 1:
        raise ValueError(f"{name} must hold at least one source (last dimension is 0)")


def _check_eps(eps: float) -> None:
    if not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")


def _check_iterations(iterations) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) \
            or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")


def _check_batch_size(batch_size: Optional[int]) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError("batch_size must be a positive integer (frames) or None, got "
                         f"{batch_size!r}")


def softmask(targets_spectrograms: Tensor, mix_stft: Tensor, eps: float = 1e-10) -> Tensor:
    """Ratio-mask separation: ``y_j = x * v_j / (eps + sum_k v_k)``.

    Parameters
    ----------
    targets_spectrograms : Tensor, shape (nb_frames, nb_bins, {1, nb_channels}, nb_sources)
        Non-negative source spectrograms (magnitudes), real.
    mix_stft : Tensor, shape (nb_frames, nb_bins, nb_channels), complex
        Mixture STFT.
    eps : float
        Added to the denominator so that silent bins give zero, not NaN.

    Returns
    -------
    Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), dtype of ``mix_stft``
    """
    _check_mixture(mix_stft)
    _check_sources(targets_spectrograms, mix_stft, "targets_spectrograms", complex_expected=False)
    _check_eps(eps)
    return _ratio_masked(targets_spectrograms, mix_stft, eps)


def _ratio_masked(targets_spectrograms: Tensor, mix_stft: Tensor, eps: float) -> Tensor:
    """:func:`softmask` without the checks (its callers made them)."""
    v = targets_spectrograms.to(mix_stft.real.dtype)
    mask = v / (eps + v.sum(dim=-1, keepdim=True))
    return mix_stft[..., None] * mask


def mixture_phase(targets_spectrograms: Tensor, mix_stft: Tensor) -> Tensor:
    """Give each source magnitude the phase of the mixture.

    Parameters
    ----------
    targets_spectrograms : Tensor, shape (nb_frames, nb_bins, {1, nb_channels}, nb_sources)
        Non-negative source magnitudes, real.
    mix_stft : Tensor, shape (nb_frames, nb_bins, nb_channels), complex

    Returns
    -------
    Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), dtype of ``mix_stft``
        ``v_j * exp(i angle(x))``; where the mixture is exactly 0 its angle is taken as 0.
    """
    _check_mixture(mix_stft)
    _check_sources(targets_spectrograms, mix_stft, "targets_spectrograms", complex_expected=False)
    return _with_mixture_phase(targets_spectrograms, mix_stft)


def _with_mixture_phase(targets_spectrograms: Tensor, mix_stft: Tensor) -> Tensor:
    """:func:`mixture_phase` without the checks."""
    v = targets_spectrograms.to(mix_stft.real.dtype)
    # torch.polar broadcasts: mono spectrograms take each channel's mixture phase
    return torch.polar(v, torch.angle(mix_stft)[..., None])


def add_residual(y: Tensor, mix_stft: Tensor) -> Tensor:
    """Append the residual source ``x - sum_j y_j``, so that all sources add up to ``x``.

    Parameters
    ----------
    y : Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), complex
        Source estimates.
    mix_stft : Tensor, shape (nb_frames, nb_bins, nb_channels), complex

    Returns
    -------
    Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources + 1)
    """
    _check_mixture(mix_stft)
    _check_sources(y, mix_stft, "y", complex_expected=True)
    return _with_residual(y, mix_stft)


def _with_residual(y: Tensor, mix_stft: Tensor) -> Tensor:
    """:func:`add_residual` without the checks."""
    return torch.cat([y, mix_stft[..., None] - y.sum(dim=-1, keepdim=True)], dim=-1)


def invert(M: Tensor, eps: float = 1e-10) -> Tensor:
    """Invert a stack of small Hermitian covariance matrices.

    Parameters
    ----------
    M : Tensor, shape (..., nb_channels, nb_channels), complex
        Matrices to invert. The EM adds ``sqrt(eps) I`` beforehand, which keeps them
        positive definite.
    eps : float
        Added to the scalar in the one-channel case (as norbert does).

    Returns
    -------
    Tensor, same shape as ``M``

    Notes
    -----
    One channel: ``1 / (M + eps)``. Two channels: the closed form
    ``[[d, -b], [-c, a]] / (ad - bc)``, which is faster than a batched LU on CPU and
    keeps the exact arithmetic of the reference. More channels: ``torch.linalg.inv``.
    """
    nb_channels = M.shape[-1]
    if M.ndim < 2 or M.shape[-2] != nb_channels:
        raise ValueError(f"invert expects square matrices (..., n, n), got shape {tuple(M.shape)}")
    if nb_channels == 1:
        return 1.0 / (M + eps)
    if nb_channels == 2:
        a, b = M[..., 0, 0], M[..., 0, 1]
        c, d = M[..., 1, 0], M[..., 1, 1]
        inv_det = 1.0 / (a * d - b * c)
        first_row = torch.stack([inv_det * d, -inv_det * b], dim=-1)
        second_row = torch.stack([-inv_det * c, inv_det * a], dim=-1)
        return torch.stack([first_row, second_row], dim=-2)
    return torch.linalg.inv(M)


def _frame_blocks(nb_frames: int, batch_size: Optional[int]):
    step = nb_frames if not batch_size else batch_size
    for start in range(0, nb_frames, max(step, 1)):
        yield slice(start, min(start + step, nb_frames))


def local_gaussian_model(y: Tensor, eps: float = 1e-10,
                         batch_size: Optional[int] = 200) -> Tuple[Tensor, Tensor]:
    """Power spectral densities and spatial covariances of source estimates.

    Parameters
    ----------
    y : Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), complex
        Source STFT estimates.
    eps : float
        Added to the weight ``sum_t v_j(t, f)`` so that silent sources give ``R_j = 0``.
    batch_size : int or None
        Frames accumulated at a time (bounds the size of the outer products).

    Returns
    -------
    v : Tensor, shape (nb_frames, nb_bins, nb_sources), real
        ``v_j(t, f) = mean_c |y_j(t, f, c)|^2``.
    R : Tensor, shape (nb_bins, nb_channels, nb_channels, nb_sources), complex
        ``R_j(f) = sum_t y_j y_j^H / (eps + sum_t v_j(t, f))``, Hermitian.
    """
    _check_eps(eps)
    _check_batch_size(batch_size)
    nb_frames, nb_bins, nb_channels, nb_sources = y.shape
    v = torch.mean(y.real ** 2 + y.imag ** 2, dim=2)
    R = torch.zeros((nb_bins, nb_channels, nb_channels, nb_sources), dtype=y.dtype, device=y.device)
    for block in _frame_blocks(nb_frames, batch_size):
        yb = y[block]
        R = R + torch.einsum("tfcj,tfdj->fcdj", yb, yb.conj())
    weight = eps + v.sum(dim=0)
    R = R / weight[:, None, None, :]
    return v, R


def expectation_maximization(y: Tensor, x: Tensor, iterations: int = 2, eps: float = 1e-10,
                             batch_size: Optional[int] = 200) -> Tuple[Tensor, Tensor, Tensor]:
    """Refine source estimates with the simplified multichannel EM of [1]_ - [4]_.

    Each iteration fits a local Gaussian model to the current estimates
    (:func:`local_gaussian_model`) and replaces them by the posterior means
    ``y_j = v_j R_j C_x^-1 x`` with ``C_x = sum_j v_j R_j + sqrt(eps) I`` [6]_. As in
    norbert and Open-Unmix this is the approximate scheme of [4]_ (empirical covariance
    of the latest estimates), not the exact EM: it is more robust on music.

    Parameters
    ----------
    y : Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), complex
        Initial source estimates (not modified).
    x : Tensor, shape (nb_frames, nb_bins, nb_channels), complex
        Mixture STFT, same dtype and device as ``y``.
    iterations : int
        Number of EM rounds; 0 returns ``y`` as it is.
    eps : float
        Regularisation: ``sqrt(eps)`` is added to the diagonal of ``C_x``, ``eps`` to the
        weights of ``R_j`` (and to the scalar ``C_x`` with one channel).
    batch_size : int or None
        Frames processed at a time; the memory of the filter step grows with it
        (``batch_size * nb_bins * nb_channels**2`` complex numbers per source). None: all.

    Returns
    -------
    y : Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources), complex
        Refined estimates.
    v : Tensor, shape (nb_frames, nb_bins, nb_sources), real
        Power spectral densities of the last iteration's model.
    R : Tensor, shape (nb_bins, nb_channels, nb_channels, nb_sources), complex
        Spatial covariance matrices of the last iteration's model.
    """
    _check_mixture(x)
    _check_sources(y, x, "y", complex_expected=True)
    if y.shape[2] != x.shape[2]:
        raise ValueError(f"y has {y.shape[2]} channels but x has {x.shape[2]}; they must match")
    if y.dtype != x.dtype or y.device != x.device:
        raise ValueError(f"y ({y.dtype}, {y.device}) and x ({x.dtype}, {x.device}) must share "
                         "dtype and device")
    _check_iterations(iterations)
    _check_eps(eps)
    _check_batch_size(batch_size)
    return _em(y, x, iterations, eps, batch_size)


def _em(y: Tensor, x: Tensor, iterations: int, eps: float,
        batch_size: Optional[int]) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`expectation_maximization` without the checks."""
    nb_frames, nb_bins, nb_channels, nb_sources = y.shape
    regularization = (eps ** 0.5) * torch.eye(nb_channels, dtype=x.dtype, device=x.device)
    v = torch.zeros((nb_frames, nb_bins, nb_sources), dtype=x.real.dtype, device=x.device)
    R = torch.zeros((nb_bins, nb_channels, nb_channels, nb_sources), dtype=x.dtype, device=x.device)
    for _ in range(iterations):
        v, R = local_gaussian_model(y, eps, batch_size)
        y_new = torch.empty_like(y)
        for block in _frame_blocks(nb_frames, batch_size):
            v_b = v[block].to(x.dtype)
            # C_x(t, f) = sum_j v_j(t, f) R_j(f), summed by einsum without the 5-D product
            Cxx = torch.einsum("tfj,fcdj->tfcd", v_b, R) + regularization
            inv_Cxx = invert(Cxx, eps)
            x_b = x[block, ..., None]
            for j in range(nb_sources):
                # gain = v_j R_j C_x^-1, then applied to the mixture (norbert's order of products)
                gain = torch.matmul(R[None, ..., j], inv_Cxx) * v_b[..., j, None, None]
                y_new[block, ..., j] = torch.matmul(gain, x_b)[..., 0]
        y = y_new
    return y, v, R


def wiener(targets_spectrograms: Tensor, mix_stft: Tensor, iterations: int = 1,
           softmask: bool = False, residual: bool = False, scale_factor: float = 10.0,
           eps: float = 1e-10, batch_size: Optional[int] = 200) -> Tensor:
    """Multichannel Wiener filter: source magnitudes + mixture STFT -> source STFTs.

    Parameters
    ----------
    targets_spectrograms : Tensor, shape (nb_frames, nb_bins, {1, nb_channels}, nb_sources)
        Non-negative magnitude estimates of the sources (e.g. a model's output), real;
        cast to the real dtype of ``mix_stft``.
    mix_stft : Tensor, shape (nb_frames, nb_bins, nb_channels), complex
        Mixture STFT (``complex64`` or ``complex128``; the latter is more accurate).
    iterations : int
        EM iterations; 0 returns the initial estimates (plus residual).
    softmask : bool
        Initialise with ratio masks (:func:`softmask`) instead of the magnitudes with the
        mixture phase (:func:`mixture_phase`). The latter needs magnitude estimates of
        the right scale, as a trained network gives.
    residual : bool
        Add a source ``x - sum_j y_j`` (e.g. the accompaniment when only vocals are
        modelled) before the EM.
    scale_factor : float
        Before the EM, mixture and estimates are divided by ``max(1, max|x| /
        scale_factor)`` and multiplied back afterwards, so that the powers and
        covariances stay in a range where ``eps`` is meaningful and nothing overflows.
    eps : float
        Regularisation of the masks and the EM (see :func:`expectation_maximization`).
    batch_size : int or None
        Frames per block inside the EM (memory bound).

    Returns
    -------
    Tensor, shape (nb_frames, nb_bins, nb_channels, nb_sources [+ 1 if residual]), complex
        Complex STFTs of the sources, dtype and device of ``mix_stft``. The inputs are
        not modified.

    Notes
    -----
    With ``residual=True`` the sources add up to ``x`` exactly when ``iterations == 0``
    and up to ``x - sqrt(eps) C_x^-1 x`` (relative error about ``sqrt(eps)`` over the
    bin's power) after the EM. Conventions (scale, eps placement, regularisation,
    inverse) are those of ``norbert.wiener``, which the tests compare against, and of
    Open-Unmix's ``filtering.wiener`` (which adds the residual source).
    """
    _check_mixture(mix_stft)
    _check_sources(targets_spectrograms, mix_stft, "targets_spectrograms", complex_expected=False)
    if not scale_factor > 0:
        raise ValueError(f"scale_factor must be positive, got {scale_factor!r}")
    _check_iterations(iterations)
    if not (torch.isfinite(targets_spectrograms).all()
            and torch.isfinite(torch.view_as_real(mix_stft)).all()):
        raise ValueError("wiener got NaN or infinite values in targets_spectrograms or mix_stft; "
                         "check the model output and the input audio")
    if (targets_spectrograms < 0).any():
        raise ValueError("targets_spectrograms must be non-negative magnitudes "
                         "(got negative values)")

    _check_eps(eps)
    _check_batch_size(batch_size)

    # checked once above; the steps below are the unchecked kernels
    if softmask:
        y = _ratio_masked(targets_spectrograms, mix_stft, eps)
    else:
        y = _with_mixture_phase(targets_spectrograms, mix_stft)
    if residual:
        y = _with_residual(y, mix_stft)
    if iterations == 0:
        return y

    max_abs = max(1.0, float(mix_stft.abs().max()) / scale_factor)
    y, _, _ = _em(y / max_abs, mix_stft / max_abs, iterations, eps, batch_size)
    return y * max_abs
