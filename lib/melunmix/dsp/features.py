"""Time-frequency features as torch modules: STFT/ISTFT, magnitude, mel, log-mel, MFCC.

Everything here is plain torch (so it runs on CPU and CUDA and is differentiable)
except the mel filterbank weights, which come from :func:`librosa.filters.mel` so that
the mel scale (Slaney or HTK) is exactly librosa's.

Shape conventions follow Open-Unmix:

- waveform ``(..., nb_samples)`` (typically ``(nb_examples, nb_channels, nb_samples)``)
- complex STFT ``(..., nb_bins, nb_frames)`` with ``nb_bins = n_fft // 2 + 1``
- magnitude spectrogram: same shape, real and non-negative
- mel / MFCC: ``(..., nb_mels, nb_frames)`` / ``(..., nb_mfcc, nb_frames)``

Log compression is in decibels of power (``10 log10``), as librosa's ``power_to_db``;
a ``log1p``-style compression is not provided because the dB scale with an ``amin``
floor is what librosa's MFCC uses and what the mel branch of the proposed model needs.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "STFT",
    "ISTFT",
    "magnitude",
    "mel_filterbank",
    "linear_filterbank",
    "MelSpectrogram",
    "power_to_db",
    "LogMelSpectrogram",
    "dct_matrix",
    "MFCC",
    "branch_transform",
    "BRANCH_FEATURES",
    "bandwidth_to_max_bin",
    "nb_frames",
]

# Below this window-square envelope a sample is not divided by it (torch.istft's NOLA
# threshold): only the very first/last samples of a non-centred STFT get there.
_ENVELOPE_FLOOR = 1e-11


def check_positive_int(name: str, value, allow_none: bool = False) -> None:
    """The package's check of a positive whole number (``None`` too when ``allow_none``)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_stft_settings(n_fft: int, n_hop: int) -> None:
    check_positive_int("n_fft", n_fft)
    check_positive_int("n_hop", n_hop)
    if n_hop > n_fft:
        raise ValueError(
            f"n_hop ({n_hop}) must not exceed n_fft ({n_fft}); otherwise samples between "
            "frames are never analysed and the ISTFT cannot reconstruct them"
        )


def _hann(n_fft: int) -> Tensor:
    # built in float64 and cast per call, so float64 transforms use an exact window
    # (a float32 window limits the dynamic range of the spectrum to about 1e-8)
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64)


def nb_frames(nb_samples: int, n_fft: int, n_hop: int, center: bool = True) -> int:
    """Number of STFT frames :class:`STFT` produces for a signal.

    Parameters
    ----------
    nb_samples : int
        Signal length in samples.
    n_fft, n_hop : int
        Frame length and hop in samples.
    center : bool
        Whether the signal is padded by ``n_fft // 2`` on both sides.

    Returns
    -------
    int
        ``1 + nb_samples // n_hop`` when centred, else ``1 + (nb_samples - n_fft) // n_hop``.
    """
    if center:
        return 1 + nb_samples // n_hop
    return 1 + (nb_samples - n_fft) // n_hop


class STFT(nn.Module):
    """Short-time Fourier transform of real signals with a periodic Hann window.

    Parameters
    ----------
    n_fft : int
        Frame (and FFT) length in samples.
    n_hop : int
        Hop between frames in samples.
    center : bool
        If True, pad ``n_fft // 2`` samples on both sides so that frame ``t`` is centred
        on sample ``t * n_hop`` (as librosa and Open-Unmix at inference).
    pad_mode : str
        Padding used when ``center`` is True: ``"reflect"`` (Open-Unmix's choice, the
        default) or ``"constant"`` (zeros, librosa >= 0.10's default).

    Notes
    -----
    Unnormalised transform with the ``exp(-2j pi k n / n_fft)`` kernel, i.e. the same
    values as ``librosa.stft(y, n_fft=n_fft, hop_length=n_hop, window="hann",
    center=center, pad_mode=pad_mode)``. The window is a non-persistent buffer: it
    follows ``.to(device)`` but is not stored in state dicts.
    """

    def __init__(self, n_fft: int = 4096, n_hop: int = 1024, center: bool = True,
                 pad_mode: str = "reflect"):
        super().__init__()
        _check_stft_settings(n_fft, n_hop)
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")
        self.n_fft = int(n_fft)
        self.n_hop = int(n_hop)
        self.center = bool(center)
        self.pad_mode = pad_mode
        self.register_buffer("window", _hann(self.n_fft), persistent=False)

    @property
    def nb_bins(self) -> int:
        """Number of frequency bins, ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    def forward(self, x: Tensor) -> Tensor:
        """Transform a real signal.

        Parameters
        ----------
        x : Tensor, shape (..., nb_samples)
            Real floating-point waveform(s), e.g. ``(nb_examples, nb_channels, nb_samples)``.

        Returns
        -------
        Tensor, shape (..., nb_bins, nb_frames), complex
            ``nb_bins = n_fft // 2 + 1``; ``nb_frames`` as :func:`nb_frames`.
        """
        if x.is_complex() or not x.is_floating_point():
            raise ValueError(f"STFT expects a real floating-point waveform, got dtype {x.dtype}")
        if x.ndim == 0:
            raise ValueError("STFT expects a waveform of shape (..., nb_samples), got a scalar")
        nb_samples = x.shape[-1]
        if self.center and self.pad_mode == "reflect" and nb_samples <= self.n_fft // 2:
            raise ValueError(
                f"signal of {nb_samples} samples is too short for reflect padding with "
                f"n_fft={self.n_fft}: it needs more than {self.n_fft // 2} samples "
                "(use a longer signal, a smaller n_fft or pad_mode='constant')"
            )
        if not self.center and nb_samples < self.n_fft:
            raise ValueError(
                f"signal of {nb_samples} samples is shorter than one frame (n_fft={self.n_fft}); "
                "use center=True or a longer signal"
            )
        batch_shape = x.shape[:-1]
        X = torch.stft(
            x.reshape(-1, nb_samples),
            n_fft=self.n_fft,
            hop_length=self.n_hop,
            window=self.window.to(dtype=x.dtype, device=x.device),
            center=self.center,
            pad_mode=self.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return X.reshape(batch_shape + X.shape[-2:])


class ISTFT(nn.Module):
    """Inverse of :class:`STFT` by windowed overlap-add (least-squares inverse).

    Parameters
    ----------
    n_fft : int
        Frame length in samples (the STFT's).
    n_hop : int
        Hop in samples (the STFT's).
    center : bool
        Must equal the forward transform's ``center``.

    Notes
    -----
    Each frame is inverse-FFT'd, multiplied by the Hann window, overlap-added, and the
    sum is divided by the overlap-added squared window (the envelope). With ``n_hop <=
    n_fft / 2`` the envelope is positive everywhere except at the signal edges.

    Edge behaviour:

    - ``center=True``: the padded edges are cut off, every returned sample is inside the
      full-overlap region and the round trip is exact to float precision.
    - ``center=False``: the first and last ``n_fft - n_hop`` samples are covered by fewer
      windows; they are still divided by the (small) envelope, so they are reconstructed
      but with an error that grows towards the ends; samples where the envelope is below
      1e-11 (the very first sample, where the periodic Hann window is 0) are returned
      as the un-normalised overlap-add, i.e. 0. Samples after the last full frame
      (when ``(nb_samples - n_fft) % n_hop != 0``) were never analysed and are 0 when
      ``length`` asks for them.
    """

    def __init__(self, n_fft: int = 4096, n_hop: int = 1024, center: bool = True):
        super().__init__()
        _check_stft_settings(n_fft, n_hop)
        self.n_fft = int(n_fft)
        self.n_hop = int(n_hop)
        self.center = bool(center)
        self.register_buffer("window", _hann(self.n_fft), persistent=False)

    def forward(self, X: Tensor, length: Optional[int] = None) -> Tensor:
        """Reconstruct the waveform.

        Parameters
        ----------
        X : Tensor, shape (..., nb_bins, nb_frames), complex
            One-sided STFT with ``nb_bins = n_fft // 2 + 1``.
        length : int, optional
            Number of samples to return (the original signal's length). The output is
            cropped or zero-padded to exactly this length. Default: all samples the
            frames cover (``n_hop * (nb_frames - 1)`` when centred).

        Returns
        -------
        Tensor, shape (..., length), real
        """
        if not X.is_complex():
            raise ValueError(f"ISTFT expects a complex STFT, got dtype {X.dtype}")
        if X.ndim < 2:
            raise ValueError(f"ISTFT expects shape (..., nb_bins, nb_frames), got {tuple(X.shape)}")
        nb_bins, nb_frames_ = X.shape[-2], X.shape[-1]
        if nb_bins != self.n_fft // 2 + 1:
            raise ValueError(
                f"STFT has {nb_bins} bins but n_fft={self.n_fft} needs {self.n_fft // 2 + 1}; "
                "use the same n_fft as the forward transform"
            )
        if nb_frames_ < 1:
            raise ValueError("ISTFT needs at least one frame")
        if length is not None:
            check_positive_int("length", length)

        batch_shape = X.shape[:-2]
        X = X.reshape(-1, nb_bins, nb_frames_)
        real_dtype = X.real.dtype
        window = self.window.to(dtype=real_dtype, device=X.device)

        frames = torch.fft.irfft(X, n=self.n_fft, dim=-2) * window[:, None]
        full_length = self.n_fft + self.n_hop * (nb_frames_ - 1)
        y = self._overlap_add(frames, full_length)
        envelope = self._overlap_add((window ** 2)[None, :, None].expand(1, self.n_fft, nb_frames_),
                                     full_length)[0]

        start = self.n_fft // 2 if self.center else 0
        if length is None:
            stop = full_length - start
        else:
            stop = start + length
        y = y[:, start:min(stop, full_length)]
        envelope = envelope[start:min(stop, full_length)]
        y = torch.where(envelope > _ENVELOPE_FLOOR, y / envelope.clamp_min(_ENVELOPE_FLOOR), y)
        if stop > full_length:
            y = F.pad(y, (0, stop - full_length))
        return y.reshape(batch_shape + y.shape[-1:])


    def _overlap_add(self, frames: Tensor, full_length: int) -> Tensor:
        """Sum frames ``(batch, n_fft, nb_frames)`` placed ``n_hop`` apart -> ``(batch, full_length)``.

        When ``n_fft`` is a multiple of ``n_hop`` (the usual 4096/1024), each frame is cut
        into ``n_fft / n_hop`` hop-long pieces and piece ``r`` of every frame is added at
        once with one shifted slice addition: ``n_fft / n_hop`` vectorised additions
        instead of ``F.fold``'s scatter, 3-4x faster on CPU (bench/separate.py). Other
        ratios use ``F.fold``.
        """
        nb_batch, n_fft, nb_frames_ = frames.shape
        hop = self.n_hop
        if n_fft % hop:
            return F.fold(frames, output_size=(1, full_length), kernel_size=(1, n_fft),
                          stride=(1, hop)).reshape(nb_batch, full_length)
        nb_pieces = n_fft // hop
        pieces = frames.reshape(nb_batch, nb_pieces, hop, nb_frames_).transpose(-1, -2)
        out = frames.new_zeros((nb_batch, nb_frames_ + nb_pieces - 1, hop))
        for r in range(nb_pieces):
            out[:, r:r + nb_frames_] += pieces[:, r]
        return out.reshape(nb_batch, full_length)


def magnitude(X: Tensor, power: float = 1.0) -> Tensor:
    """Magnitude (``power=1``) or power (``power=2``) of a complex spectrogram.

    Parameters
    ----------
    X : Tensor, complex, any shape
    power : float
        Exponent applied to ``|X|``; must be positive.

    Returns
    -------
    Tensor, real, same shape as ``X``
    """
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    mag = X.abs()
    return mag if power == 1.0 else mag ** power


def _check_mel_settings(sample_rate: float, n_fft: int, n_mels: int, fmin: float,
                        fmax: Optional[float], norm) -> float:
    if not sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive (Hz), got {sample_rate!r}")
    check_positive_int("n_fft", n_fft)
    check_positive_int("n_mels", n_mels)
    nyquist = sample_rate / 2.0
    fmax_ = nyquist if fmax is None else float(fmax)
    if fmin < 0 or fmin >= fmax_:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin} Hz, fmax={fmax_} Hz")
    if fmax_ > nyquist:
        raise ValueError(f"fmax={fmax_} Hz is above the Nyquist frequency {nyquist} Hz "
                         f"of sample_rate={sample_rate}")
    if not (norm is None or norm == "slaney" or isinstance(norm, (int, float))):
        raise ValueError(f"norm must be 'slaney', None or a number (p-norm), got {norm!r}")
    return fmax_


def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                   fmax: Optional[float] = None, htk: bool = False,
                   norm: Union[str, float, None] = "slaney") -> Tensor:
    """Triangular mel filterbank, exactly :func:`librosa.filters.mel`.

    Parameters
    ----------
    sample_rate : float
        Sample rate in Hz.
    n_fft : int
        FFT length; the filterbank acts on ``n_fft // 2 + 1`` bins.
    n_mels : int
        Number of mel bands.
    fmin, fmax : float
        Lowest and highest band edges in Hz; ``fmax=None`` means ``sample_rate / 2``.
    htk : bool
        HTK mel formula (``2595 log10(1 + f/700)``) instead of Slaney's (linear below
        1 kHz, logarithmic above).
    norm : {"slaney", None} or float
        ``"slaney"`` divides each triangle by its width (constant energy per band).

    Returns
    -------
    Tensor, shape (n_mels, n_fft // 2 + 1), float32
    """
    import librosa  # heavy import, only needed when a filterbank is built

    fmax_ = _check_mel_settings(sample_rate, n_fft, n_mels, fmin, fmax, norm)
    fb = librosa.filters.mel(sr=float(sample_rate), n_fft=int(n_fft), n_mels=int(n_mels),
                             fmin=float(fmin), fmax=fmax_, htk=bool(htk), norm=norm,
                             dtype=np.float64)
    return torch.from_numpy(fb).to(torch.float32)


def linear_filterbank(sample_rate: float, n_fft: int, n_bands: int = 128, fmin: float = 0.0,
                      fmax: Optional[float] = None,
                      norm: Union[str, float, None] = "slaney") -> Tensor:
    """Triangular filterbank with band centres equally spaced in Hz.

    The mel filterbank's construction (:func:`mel_filterbank`, librosa's) with the mel
    scale replaced by the identity: ``n_bands + 2`` edges equally spaced from ``fmin`` to
    ``fmax``, band ``i`` rising linearly from edge ``i`` to edge ``i + 1`` and falling to
    edge ``i + 2``. It is the capacity-matched control of the study: the same number of
    bands, the same log compression and normalisation as the mel branch, but on a linear
    frequency scale, so a difference between the two isolates the mel scale itself.

    Parameters
    ----------
    sample_rate, n_fft, fmin, fmax, norm
        As :func:`mel_filterbank` (``"slaney"`` divides each triangle by half its width
        in Hz, constant energy per band).
    n_bands : int
        Number of bands.

    Returns
    -------
    Tensor, shape (n_bands, n_fft // 2 + 1), float32
    """
    fmax_ = _check_mel_settings(sample_rate, n_fft, n_bands, fmin, fmax, norm)
    if not (norm is None or norm == "slaney"):
        raise ValueError(f"linear_filterbank supports norm 'slaney' or None, got {norm!r}")
    bin_freqs = np.linspace(0.0, float(sample_rate) / 2.0, int(n_fft) // 2 + 1)
    edges = np.linspace(float(fmin), fmax_, int(n_bands) + 2)
    widths = np.diff(edges)
    ramps = edges[:, None] - bin_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return torch.from_numpy(fb).to(torch.float32)


def _check_magnitude_input(S: Tensor, nb_bins: int, who: str) -> None:
    if S.is_complex():
        raise ValueError(f"{who} expects a real magnitude spectrogram; "
                         "apply melunmix.dsp.features.magnitude() to the complex STFT first")
    if S.ndim < 2 or S.shape[-2] != nb_bins:
        raise ValueError(f"{who} expects shape (..., {nb_bins}, nb_frames), got {tuple(S.shape)}; "
                         "check that n_fft matches the STFT's")


class MelSpectrogram(nn.Module):
    """Mel spectrogram of a magnitude spectrogram.

    Parameters
    ----------
    sample_rate, n_fft, n_mels, fmin, fmax, htk, norm
        As :func:`mel_filterbank`.
    power : float
        The input magnitude is raised to this power before the filterbank: 1 gives a
        magnitude mel spectrogram, 2 (default) a power mel spectrogram (librosa's
        ``melspectrogram`` default).
    scale : {"mel", "linear"}
        ``"linear"`` replaces the mel filterbank by :func:`linear_filterbank` (bands
        equally spaced in Hz; ``htk`` is then unused): the study's control feature.

    Notes
    -----
    The filterbank is a persistent buffer (``fb``): a saved model keeps the exact
    weights it was trained with even if a later librosa changes them.
    """

    def __init__(self, sample_rate: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                 fmax: Optional[float] = None, htk: bool = False,
                 norm: Union[str, float, None] = "slaney", power: float = 2.0,
                 scale: str = "mel"):
        super().__init__()
        if power <= 0:
            raise ValueError(f"power must be positive, got {power}")
        if scale not in ("mel", "linear"):
            raise ValueError(f"scale must be 'mel' or 'linear', got {scale!r}")
        self.sample_rate = float(sample_rate)
        self.n_fft = int(n_fft)
        self.n_mels = int(n_mels)
        self.power = float(power)
        self.scale = scale
        fb = (mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm) if scale == "mel"
              else linear_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, norm))
        self.register_buffer("fb", fb)

    def forward(self, S: Tensor) -> Tensor:
        """Apply the filterbank.

        Parameters
        ----------
        S : Tensor, shape (..., nb_bins, nb_frames)
            Magnitude spectrogram (non-negative, not squared).

        Returns
        -------
        Tensor, shape (..., n_mels, nb_frames)
        """
        _check_magnitude_input(S, self.fb.shape[1], "MelSpectrogram")
        S = S if self.power == 1.0 else S ** self.power
        return torch.matmul(self.fb.to(S.dtype), S)


def power_to_db(S: Tensor, ref: Union[float, Callable[[Tensor], Tensor]] = 1.0,
                amin: float = 1e-10, top_db: Optional[float] = 80.0,
                dim: Union[int, Sequence[int], None] = None) -> Tensor:
    """Power to decibels, ``10 log10(max(S, amin) / max(ref, amin))``, as librosa.

    Parameters
    ----------
    S : Tensor
        Power values (not magnitudes), any shape.
    ref : float or callable
        Reference power (0 dB); a callable gets ``S`` and returns it (e.g. ``torch.amax``).
    amin : float
        Floor on ``S`` and ``ref`` before the log, so silence gives ``10 log10(amin)`` dB
        instead of ``-inf``.
    top_db : float or None
        If given, values are clipped from below at ``max - top_db`` dB.
    dim : int, sequence of int or None
        Dimensions over which that maximum is taken. ``None`` (default) takes the
        maximum over the whole tensor, which is exactly librosa's behaviour; for a batch
        pass e.g. ``dim=(-2, -1)`` so that each spectrogram is clipped against its own
        maximum and examples do not influence each other.

    Returns
    -------
    Tensor, same shape as ``S``, in dB
    """
    if amin <= 0:
        raise ValueError(f"amin must be strictly positive, got {amin}")
    if S.is_complex():
        raise ValueError("power_to_db expects real power values; use magnitude(X, power=2)")
    ref_value = ref(S) if callable(ref) else torch.as_tensor(abs(ref), dtype=S.dtype,
                                                             device=S.device)
    log_spec = 10.0 * torch.log10(S.clamp_min(amin))
    log_spec = log_spec - 10.0 * torch.log10(torch.clamp_min(ref_value, amin))
    if top_db is not None:
        if top_db < 0:
            raise ValueError(f"top_db must be non-negative, got {top_db}")
        if dim is None:
            peak = log_spec.max()
        else:
            peak = log_spec.amax(dim=dim, keepdim=True)
        log_spec = torch.maximum(log_spec, peak - top_db)
    return log_spec


class LogMelSpectrogram(nn.Module):
    """Power mel spectrogram in dB: magnitude -> ``|S|**2`` -> mel -> ``power_to_db``.

    Parameters
    ----------
    sample_rate, n_fft, n_mels, fmin, fmax, htk, norm
        As :func:`mel_filterbank`.
    amin : float
        Power floor before the log (1e-10, i.e. -100 dB, as librosa).
    top_db : float or None
        Dynamic range clip relative to each spectrogram's own maximum (over its
        ``(n_mels, nb_frames)``, per example and per channel). None (default) disables
        it, which makes the features of a frame independent of the rest of the excerpt.
    scale : {"mel", "linear"}
        Frequency scale of the bands (:class:`MelSpectrogram`).
    """

    def __init__(self, sample_rate: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                 fmax: Optional[float] = None, htk: bool = False,
                 norm: Union[str, float, None] = "slaney", amin: float = 1e-10,
                 top_db: Optional[float] = None, scale: str = "mel"):
        super().__init__()
        if amin <= 0:
            raise ValueError(f"amin must be strictly positive, got {amin}")
        if top_db is not None and top_db < 0:
            raise ValueError(f"top_db must be non-negative or None, got {top_db}")
        self.mel = MelSpectrogram(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm, power=2.0,
                                  scale=scale)
        self.amin = float(amin)
        self.top_db = None if top_db is None else float(top_db)
        self.nb_features = int(n_mels)

    def forward(self, S: Tensor) -> Tensor:
        """Magnitude ``(..., nb_bins, nb_frames)`` -> dB ``(..., n_mels, nb_frames)``."""
        return power_to_db(self.mel(S), ref=1.0, amin=self.amin, top_db=self.top_db,
                           dim=(-2, -1))


def dct_matrix(n_mfcc: int, n_mels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Orthonormal DCT-II matrix (scipy's ``dct(type=2, norm="ortho")``), first rows.

    ``D[k, n] = sqrt(2 / n_mels) * cos(pi * k * (2n + 1) / (2 n_mels))`` for ``k > 0``,
    and ``sqrt(1 / n_mels)`` for ``k = 0``.

    Parameters
    ----------
    n_mfcc : int
        Number of coefficients kept (rows), at most ``n_mels``.
    n_mels : int
        Input length (columns).
    dtype : torch.dtype
        Output dtype (computed in float64 first).

    Returns
    -------
    Tensor, shape (n_mfcc, n_mels); ``D @ x`` transforms along the mel axis.
    """
    check_positive_int("n_mfcc", n_mfcc)
    check_positive_int("n_mels", n_mels)
    if n_mfcc > n_mels:
        raise ValueError(f"n_mfcc ({n_mfcc}) cannot exceed n_mels ({n_mels})")
    k = torch.arange(n_mfcc, dtype=torch.float64)[:, None]
    n = torch.arange(n_mels, dtype=torch.float64)[None, :]
    D = torch.cos(torch.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    D[0] = np.sqrt(1.0 / n_mels)
    return D.to(dtype)


class MFCC(nn.Module):
    """Mel-frequency cepstral coefficients as ``librosa.feature.mfcc``.

    magnitude -> power mel -> dB (``ref=1``, ``amin``, ``top_db``) -> orthonormal DCT-II
    along the mel axis, first ``n_mfcc`` coefficients (no liftering).

    Parameters
    ----------
    sample_rate, n_fft, n_mels, fmin, fmax, htk, norm
        As :func:`mel_filterbank`.
    n_mfcc : int
        Number of coefficients.
    top_db : float or None
        Dynamic-range clip before the DCT. librosa takes the maximum over its whole
        input array (all channels); here it is taken per spectrogram, i.e. over the
        last two dimensions ``(n_mels, nb_frames)`` of each example and each channel,
        so batching never mixes examples. For a single-channel 2-D input the two agree.
        None disables the clip.
    amin : float
        Power floor before the log.
    """

    def __init__(self, sample_rate: float, n_fft: int, n_mfcc: int = 20, n_mels: int = 128,
                 fmin: float = 0.0, fmax: Optional[float] = None, htk: bool = False,
                 norm: Union[str, float, None] = "slaney", top_db: Optional[float] = 80.0,
                 amin: float = 1e-10):
        super().__init__()
        self.log_mel = LogMelSpectrogram(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm,
                                         amin=amin, top_db=top_db)
        self.register_buffer("dct", dct_matrix(n_mfcc, n_mels), persistent=False)
        self.nb_features = int(n_mfcc)

    def forward(self, S: Tensor) -> Tensor:
        """Magnitude ``(..., nb_bins, nb_frames)`` -> MFCC ``(..., n_mfcc, nb_frames)``."""
        S_db = self.log_mel(S)
        return torch.matmul(self.dct.to(S_db.dtype), S_db)


#: Features the second branch of :class:`melunmix.models.networks.MelUnmix` can be fed.
BRANCH_FEATURES = ("mel", "mfcc", "linear")


def branch_transform(feature: str, sample_rate: float, n_fft: int, n_mels: int = 64,
                     n_mfcc: int = 20, fmin: float = 0.0, fmax: Optional[float] = None,
                     htk: bool = False, norm: Union[str, float, None] = "slaney",
                     amin: float = 1e-10) -> nn.Module:
    """The feature transform of the proposed model's second branch.

    Dataset statistics for that branch must be computed with this very transform (it is
    what :meth:`melunmix.models.networks.MelUnmix.branch_features` applies).

    Parameters
    ----------
    feature : {"mel", "mfcc", "linear"}
        ``"mel"``: :class:`LogMelSpectrogram` (power mel in dB, ``n_mels`` bands);
        ``"mfcc"``: :class:`MFCC` (``n_mfcc`` coefficients of an ``n_mels`` log-mel);
        ``"linear"``: the same as ``"mel"`` with ``n_mels`` bands equally spaced in Hz
        (:func:`linear_filterbank`), the study's capacity-matched control. None clips with ``top_db``: a frame's features then do not depend on how
        loud the rest of the excerpt is, so 6 s training chunks and whole songs at
        inference see the same transform; the ``amin`` floor bounds silence instead.
    sample_rate, n_fft, n_mels, n_mfcc, fmin, fmax, htk, norm, amin
        As :class:`MFCC`.

    Returns
    -------
    nn.Module
        Maps a magnitude spectrogram ``(..., n_fft // 2 + 1, nb_frames)`` to
        ``(..., nb_features, nb_frames)``; its ``nb_features`` attribute is ``n_mels``
        or ``n_mfcc``.
    """
    if feature == "mel":
        return LogMelSpectrogram(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm,
                                 amin=amin, top_db=None)
    if feature == "mfcc":
        return MFCC(sample_rate, n_fft, n_mfcc, n_mels, fmin, fmax, htk, norm,
                    top_db=None, amin=amin)
    if feature == "linear":
        return LogMelSpectrogram(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm,
                                 amin=amin, top_db=None, scale="linear")
    raise ValueError(f"feature must be one of {list(BRANCH_FEATURES)}, got {feature!r}")


def bandwidth_to_max_bin(sample_rate: float, n_fft: int, bandwidth: float) -> int:
    """Number of STFT bins whose centre frequency is at most ``bandwidth``.

    Parameters
    ----------
    sample_rate : float
        Sample rate in Hz.
    n_fft : int
        FFT length.
    bandwidth : float
        Highest frequency to keep, in Hz.

    Returns
    -------
    int
        Count of bins ``k`` with ``k * sample_rate / n_fft <= bandwidth`` (1487 for
        44100 Hz, n_fft 4096 and 16 kHz, as Open-Unmix); at most ``n_fft // 2 + 1``.
    """
    if not sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive (Hz), got {sample_rate!r}")
    check_positive_int("n_fft", n_fft)
    if bandwidth < 0:
        raise ValueError(f"bandwidth must be non-negative (Hz), got {bandwidth}")
    freqs = np.linspace(0, float(sample_rate) / 2, n_fft // 2 + 1, endpoint=True)
    return int(np.count_nonzero(freqs <= bandwidth))
