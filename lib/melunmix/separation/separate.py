"""Waveform in, separated waveforms out: STFT, model(s), Wiener filter, inverse STFT.

:class:`Separator` works at the models' sample rate on ``(nb_samples, nb_channels,
nb_timesteps)`` tensors; :func:`separate` wraps it for one song at any sample rate
(resampling, mono handling, numpy in and out). Files in and out (the ``melunmix
separate`` command) are :mod:`melunmix.separation.separate_files`.

Memory. A 10-minute stereo song at 44.1 kHz has about 25 800 STFT frames: its complex
STFT alone takes 850 MB in single precision, and Open-Unmix at hidden size 512 needs
about 3.5 times its input in intermediate tensors. So nothing spectral is held for the
whole song at once:

- the models run on chunks of ``model_win_len`` frames, each extended by
  ``model_context`` frames of real signal on both sides (discarded afterwards) so that
  the bidirectional LSTM sees the surroundings of every frame it predicts;
- the Wiener filter runs on consecutive blocks of ``wiener_win_len`` frames (as
  Open-Unmix at inference; whole-song EM would need tens of GB);
- the STFT of each block is computed from the waveform segment it depends on and the
  inverse STFT is an overlap-add streamed into the output: both give exactly the values
  of a whole-song transform, so blocks leave no seams.

What stays is the input and output audio plus one model chunk and one Wiener block:
separating a 10-minute stereo song at 44.1 kHz with a hidden-512 Open-Unmix, niter 1,
peaks at about 1.75 GB RSS (torch itself included), against about 3 GB for running the
model over the whole song at once.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..base.config import WIENER_WIN_LEN
from ..base.devices import resolve_device
from ..dsp.features import ISTFT, STFT, check_positive_int
from ..dsp.features import nb_frames as count_frames
from ..models.networks import load_model
from ..dsp.wiener import wiener

__all__ = ["Separator", "separate", "RESIDUAL_TARGET"]

PathLike = Union[str, os.PathLike]

# Name of the residual source (mixture minus the modelled targets).
RESIDUAL_TARGET = "accompaniment"


def _common_setting(target_models: Mapping[str, nn.Module], attribute: str, given):
    """The value of ``attribute`` shared by all models (and equal to ``given`` if set)."""
    values = {name: getattr(model, attribute, None) for name, model in target_models.items()}
    known = {name: value for name, value in values.items() if value is not None}
    distinct = set(known.values())
    if len(distinct) > 1:
        raise ValueError(f"the models disagree on {attribute}: {known}; separate with models "
                         f"trained with the same {attribute}")
    if given is not None:
        if distinct and given not in distinct:
            raise ValueError(f"{attribute}={given!r} was given but the models use "
                             f"{distinct.pop()!r}")
        return given
    if not distinct:
        hint = "" if attribute == "nb_channels" else f"; pass {attribute}= to Separator"
        raise ValueError(f"the models do not define {attribute}{hint}")
    return distinct.pop()


class Separator(nn.Module):
    """Separate waveforms with target magnitude models and a multichannel Wiener filter.

    Parameters
    ----------
    target_models : dict of str to nn.Module
        One model per target (e.g. ``{"vocals": model}``); each maps a mixture magnitude
        ``(nb_samples, nb_channels, nb_bins, nb_frames)`` to the target's magnitude of
        the same shape and has the attributes ``sample_rate``, ``n_fft``, ``n_hop`` and
        ``nb_channels`` (as :class:`melunmix.models.networks.OpenUnmix`). All must agree.
    niter : int
        Wiener EM iterations (0: masks only; Open-Unmix's default is 1).
    softmask : bool
        Initialise the filter with ratio masks instead of magnitudes with mixture phase.
    residual : bool
        Add the residual source ``"accompaniment"`` = mixture minus the modelled targets,
        unless ``"accompaniment"`` is itself modelled (then nothing is added).
    wiener_win_len : int
        Frames per Wiener block (300 frames = 7 s at 44.1 kHz with hop 1024). The EM
        estimates its spatial covariances per block, so this trades memory for the
        amount of signal those estimates see.
    n_fft, n_hop : int, optional
        STFT frame and hop in samples; default: the models'.
    sample_rate : float, optional
        Rate in Hz the input must have; default: the models'.
    model_win_len : int or None
        Frames per model chunk (rounded up to a multiple of ``wiener_win_len``); None runs
        the models over the whole input at once (exact, but memory grows with length).
    model_context : int
        Extra frames on each side of a model chunk that the models see but whose output
        is discarded.

    Notes
    -----
    The models are put in eval mode (batch-norm running statistics, no dropout).
    With ``model_win_len`` None (or longer than the input) the result equals running
    the STFT, the models and the inverse STFT on the whole signal with the Wiener filter
    on consecutive blocks; chunking changes only what the recurrent layers see at the
    chunk edges beyond ``model_context`` frames.
    """

    def __init__(self, target_models: Mapping[str, nn.Module], niter: int = 1,
                 softmask: bool = False, residual: bool = True, wiener_win_len: int = WIENER_WIN_LEN,
                 n_fft: Optional[int] = None, n_hop: Optional[int] = None,
                 sample_rate: Optional[float] = None, model_win_len: Optional[int] = 4096,
                 model_context: int = 256):
        super().__init__()
        if not isinstance(target_models, Mapping) or not target_models:
            raise ValueError("target_models must be a non-empty dict {target name: model}")
        for name, model in target_models.items():
            if not isinstance(model, nn.Module):
                raise ValueError(f"target_models[{name!r}] must be a torch nn.Module or (for "
                                 f"melunmix.separation.separate.separate) a model file, got {type(model).__name__}")
        if isinstance(niter, bool) or not isinstance(niter, (int, np.integer)) or niter < 0:
            raise ValueError(f"niter must be a non-negative integer, got {niter!r}")
        check_positive_int("wiener_win_len", wiener_win_len)
        check_positive_int("model_win_len", model_win_len, allow_none=True)
        if isinstance(model_context, bool) or not isinstance(model_context, (int, np.integer)) \
                or model_context < 0:
            raise ValueError(f"model_context must be a non-negative integer, got {model_context!r}")

        self.n_fft = int(_common_setting(target_models, "n_fft", n_fft))
        self.n_hop = int(_common_setting(target_models, "n_hop", n_hop))
        self.sample_rate = float(_common_setting(target_models, "sample_rate", sample_rate))
        self.nb_channels = int(_common_setting(target_models, "nb_channels", None))
        self.target_models = nn.ModuleDict(dict(target_models))
        self.niter = int(niter)
        self.softmask = bool(softmask)
        self.residual = bool(residual) and RESIDUAL_TARGET not in target_models
        self.wiener_win_len = int(wiener_win_len)
        self.model_win_len = None if model_win_len is None else \
            math.ceil(model_win_len / self.wiener_win_len) * self.wiener_win_len
        self.model_context = int(model_context)
        self.stft = STFT(self.n_fft, self.n_hop, center=True)
        self.istft = ISTFT(self.n_fft, self.n_hop, center=True)
        # frames on each side of a frame whose windows overlap it (2 for 4096 / 1024)
        self.nb_overlap_frames = math.ceil(self.n_fft / (2 * self.n_hop))
        # inference only: batch norm must use its running statistics, dropout must be off
        self.eval()

    @property
    def target_names(self) -> list:
        """Names of the estimates, in the order of the output's dimension 1."""
        return list(self.target_models) + ([RESIDUAL_TARGET] if self.residual else [])

    @property
    def min_length(self) -> int:
        """Shortest input in samples (the STFT's reflect padding needs ``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1

    def _mixture_frames(self, audio: Tensor, first: int, stop: int, dtype: torch.dtype) -> Tensor:
        """Frames ``first..stop-1`` of the whole signal's centred STFT, from a segment.

        Parameters
        ----------
        audio : Tensor, shape (nb_samples, nb_channels, nb_timesteps)
        first, stop : int
            Frame range.
        dtype : torch.dtype
            Real dtype the segment is converted to before the transform.

        Returns
        -------
        Tensor, shape (nb_samples, nb_channels, nb_bins, stop - first), complex
        """
        hop, margin = self.n_hop, self.nb_overlap_frames
        nb_timesteps = audio.shape[-1]
        # frame t covers samples t*hop - n_fft/2 .. t*hop + n_fft/2: with `margin` frames
        # of signal on both sides the segment's own edge padding never reaches the frames
        # kept (one more frame on the left keeps the segment longer than n_fft / 2).
        seg_start = max(0, (first - margin - 1) * hop)
        seg_stop = min(nb_timesteps, (stop - 1 + margin) * hop + 1)
        X = self.stft(audio[..., seg_start:seg_stop].to(dtype))
        offset = first - seg_start // hop
        return X[..., offset:offset + stop - first]

    def _target_magnitudes(self, audio: Tensor, first: int, stop: int, nb_frames: int) -> Tensor:
        """Model outputs for frames ``first..stop-1``, shape (nb_samples, nb_targets, C, F, T')."""
        context = self.model_context if self.model_win_len is not None else 0
        ctx_first, ctx_stop = max(0, first - context), min(nb_frames, stop + context)
        weights = next(iter(self.target_models.values())).parameters()
        model_dtype = next(weights, torch.empty(0)).dtype
        mag = self._mixture_frames(audio, ctx_first, ctx_stop, model_dtype).abs()
        keep = slice(first - ctx_first, stop - ctx_first)
        return torch.stack([model(mag)[..., keep] for model in self.target_models.values()], dim=1)

    def _wiener_block(self, targets: Tensor, mix_stft: Tensor) -> Tensor:
        """Wiener filter of one block for every example.

        targets (S, J, C, F, T) real, mix_stft (S, C, F, T) complex ->
        (S, J', C, F, T) complex128.
        """
        estimates = []
        for spec, mix in zip(targets, mix_stft):
            y = wiener(spec.permute(3, 2, 1, 0).to(torch.float64),
                       mix.permute(2, 1, 0).to(torch.complex128),
                       self.niter, softmask=self.softmask, residual=self.residual)
            estimates.append(y.permute(3, 2, 1, 0))
        return torch.stack(estimates)

    def forward(self, audio: Tensor) -> Tensor:
        """Separate.

        Parameters
        ----------
        audio : Tensor, shape (nb_samples, nb_channels, nb_timesteps)
            Mixture waveforms at ``sample_rate``, real floating point, with
            ``nb_channels`` equal to the models'.

        Returns
        -------
        Tensor, shape (nb_samples, nb_targets, nb_channels, nb_timesteps)
            Estimates in the order of :attr:`target_names`, dtype of ``audio``.
        """
        if not torch.is_tensor(audio) or audio.ndim != 3 or not audio.is_floating_point():
            raise ValueError("audio must be a real floating-point tensor of shape (nb_samples, "
                             f"nb_channels, nb_timesteps), got {getattr(audio, 'shape', audio)!r}")
        nb_samples, nb_channels, nb_timesteps = audio.shape
        if nb_channels != self.nb_channels:
            raise ValueError(f"audio has {nb_channels} channels but the models expect "
                             f"{self.nb_channels}; melunmix.separation.separate.separate converts mono/stereo")
        if nb_timesteps < self.min_length:
            raise ValueError(f"audio of {nb_timesteps} samples is too short: the STFT (n_fft="
                             f"{self.n_fft}) needs at least {self.min_length}; zero-pad it")
        nb_frames = count_frames(nb_timesteps, self.n_fft, self.n_hop, center=True)
        output = audio.new_zeros((nb_samples, len(self.target_names), nb_channels, nb_timesteps))
        synthesis = _StreamingISTFT(self.istft, output, nb_frames, self.nb_overlap_frames)
        chunk_len = self.model_win_len or nb_frames
        for chunk_first in range(0, nb_frames, chunk_len):
            chunk_stop = min(nb_frames, chunk_first + chunk_len)
            targets = self._target_magnitudes(audio, chunk_first, chunk_stop, nb_frames)
            for first in range(chunk_first, chunk_stop, self.wiener_win_len):
                stop = min(chunk_stop, first + self.wiener_win_len)
                block = slice(first - chunk_first, stop - chunk_first)
                # The STFT in the input's precision (float32: cheaper than a float64
                # transform); _wiener_block promotes it, and the EM runs in double.
                mix_stft = self._mixture_frames(audio, first, stop, audio.dtype)
                synthesis.push(self._wiener_block(targets[..., block], mix_stft))
        return output

    def to_dict(self, estimates: Tensor) -> Dict[str, Tensor]:
        """Split :meth:`forward`'s output by target.

        Parameters
        ----------
        estimates : Tensor, shape (nb_samples, nb_targets, nb_channels, nb_timesteps)

        Returns
        -------
        dict of str to Tensor, shape (nb_samples, nb_channels, nb_timesteps)
            e.g. ``{"vocals": ..., "accompaniment": ...}``.
        """
        if estimates.ndim != 4 or estimates.shape[1] != len(self.target_names):
            raise ValueError(f"estimates must have shape (nb_samples, {len(self.target_names)}, "
                             f"nb_channels, nb_timesteps), got {tuple(estimates.shape)}")
        return {name: estimates[:, j] for j, name in enumerate(self.target_names)}


class _StreamingISTFT:
    """Inverse STFT of frames that arrive block by block, written into ``output``.

    A sample depends on the frames whose windows cover it, i.e. ``nb_overlap`` frames on
    each side; so the samples of frame ``t`` (``t*hop .. (t+1)*hop``) are written once
    frames up to ``t + nb_overlap`` have arrived, from an inverse STFT of just the frames
    around them. Those samples then equal the whole-signal inverse STFT's, because the
    overlap-add and its window envelope see the same frames.
    """

    def __init__(self, istft: ISTFT, output: Tensor, nb_frames: int, nb_overlap: int):
        self.istft = istft
        self.output = output
        self.nb_frames = nb_frames
        self.nb_overlap = nb_overlap
        self.hop = istft.n_hop
        self.buffer: Optional[Tensor] = None  # frames buffer_first .. buffer_first + len - 1
        self.buffer_first = 0
        self.next_frame = 0  # first frame whose samples are not written yet

    def push(self, frames: Tensor) -> None:
        """Add the next frames, shape (..., nb_bins, nb_new_frames), complex."""
        # The Wiener filter works in double precision; the waveform is written in the
        # output's precision, so the inverse STFT need not run in double (2-3x faster).
        frames = frames.to(torch.complex64 if self.output.dtype == torch.float32 else torch.complex128)
        self.buffer = frames if self.buffer is None else torch.cat([self.buffer, frames], dim=-1)
        received = self.buffer_first + self.buffer.shape[-1]
        ready = self.nb_frames if received == self.nb_frames else received - self.nb_overlap
        if ready <= self.next_frame:
            return
        first = max(0, self.next_frame - self.nb_overlap)
        stop = min(received, ready + self.nb_overlap)
        start_sample = self.next_frame * self.hop
        stop_sample = self.output.shape[-1] if ready == self.nb_frames else ready * self.hop
        wave = self.istft(self.buffer[..., first - self.buffer_first:stop - self.buffer_first],
                          length=stop_sample - first * self.hop)
        self.output[..., start_sample:stop_sample] = wave[..., start_sample - first * self.hop:]
        self.next_frame = ready
        drop = max(0, self.next_frame - self.nb_overlap - self.buffer_first)
        self.buffer = self.buffer[..., drop:]
        self.buffer_first += drop


def _load_models(models: Mapping[str, Union[nn.Module, PathLike]], device: torch.device) -> dict:
    """Model files loaded, every model on ``device`` in eval mode; :class:`Separator` checks the rest."""

    if not isinstance(models, Mapping):
        raise ValueError("models must be a non-empty dict {target name: model or model file}, "
                         f"got {type(models).__name__}")
    loaded = {}
    for target, model in models.items():
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model, map_location=device)
        loaded[target] = model.to(device).eval() if isinstance(model, nn.Module) else model
    return loaded


def _as_audio_array(audio, name: str = "audio") -> np.ndarray:
    """Validate ``(nb_channels, nb_samples)`` audio and return it as float32 numpy."""
    if torch.is_tensor(audio):
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise ValueError(f"{name} must have shape (nb_channels, nb_samples), got {audio.shape}; "
                         "for a 1-D mono signal pass audio[None]")
    if audio.shape[0] > 8 and audio.shape[1] <= 8:
        raise ValueError(f"{name} has shape {audio.shape}, which looks like (nb_samples, "
                         "nb_channels) as soundfile returns it; pass audio.T")
    if audio.shape[1] == 0 or audio.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {audio.shape}); there is nothing to separate")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"{name} must hold floating-point samples in [-1, 1], got dtype "
                         f"{audio.dtype}; read it with soundfile.read(..., dtype='float32')")
    if not np.isfinite(audio).all():
        raise ValueError(f"{name} contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _resample(audio: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Resample (nb_channels, nb_samples) with soxr's high-quality filter."""
    if rate_in == rate_out:
        return audio
    import soxr

    return np.ascontiguousarray(soxr.resample(audio.T, rate_in, rate_out, quality="HQ").T)


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return np.pad(audio, ((0, 0), (0, length - audio.shape[-1])))


def separate_with(separator: Separator, audio: np.ndarray, rate: float) -> Dict[str, np.ndarray]:
    """Run ``separator`` on validated float32 audio (nb_channels, nb_samples) at ``rate``."""
    nb_channels, nb_samples = audio.shape
    model_channels = separator.nb_channels
    if nb_channels == model_channels:
        batch = audio[None]
    elif nb_channels == 1:  # mono song, multichannel model: duplicate, average back
        batch = np.repeat(audio, model_channels, axis=0)[None]
    elif model_channels == 1:  # multichannel song, mono model: channels as examples
        batch = audio[:, None]
    else:
        raise ValueError(f"audio has {nb_channels} channels but the model expects "
                         f"{model_channels}; down-mix it first")

    resampled = _resample(batch.reshape(-1, nb_samples), rate, separator.sample_rate)
    batch = resampled.reshape(batch.shape[:2] + resampled.shape[-1:])
    length = batch.shape[-1]
    if length < separator.min_length:  # a few milliseconds: pad, separate, cut
        batch = np.pad(batch, ((0, 0), (0, 0), (0, separator.min_length - length)))

    device = next(separator.parameters(), torch.empty(0)).device
    with torch.inference_mode():
        estimates = separator.to_dict(separator(torch.from_numpy(batch).to(device))[..., :length])

    results = {}
    for name, est in estimates.items():
        est = est.cpu().numpy()  # (examples, channels, length)
        if nb_channels == model_channels:
            est = est[0]
        elif nb_channels == 1:
            est = est[0].mean(axis=0, keepdims=True)
        else:
            est = est[:, 0]
        est = _fit_length(_resample(np.ascontiguousarray(est), separator.sample_rate, rate),
                          nb_samples)
        results[name] = est.astype(np.float32, copy=False)
    return results


def separate(audio, rate: float, models: Mapping[str, Union[nn.Module, PathLike]],
             niter: int = 1, softmask: bool = False, residual: bool = True,
             wiener_win_len: int = WIENER_WIN_LEN, device=None, model_win_len: Optional[int] = 4096,
             model_context: int = 256) -> Dict[str, np.ndarray]:
    """Separate one song at any sample rate.

    Parameters
    ----------
    audio : numpy.ndarray or Tensor, shape (nb_channels, nb_samples)
        Mixture waveform, floating point (nominally in [-1, 1]). Mono is duplicated to
        the models' channels and the estimates averaged back to mono.
    rate : float
        Sample rate of ``audio`` in Hz. When it differs from the models' rate the audio
        is resampled with soxr (``"HQ"``) to the models' rate and each estimate back to
        ``rate``, then cut or zero-padded (by at most a sample) to ``nb_samples``.
    models : dict of str to nn.Module or path
        ``{target: model}`` or ``{target: model file}`` (read with
        :func:`melunmix.models.networks.load_model`).
    niter, softmask, residual, wiener_win_len, model_win_len, model_context
        As :class:`Separator`.
    device : str or torch.device, optional
        Where to run; default CUDA when available, else CPU (:func:`melunmix.base.devices.resolve_device`).

    Returns
    -------
    dict of str to numpy.ndarray, shape (nb_channels, nb_samples), float32
        One entry per target plus ``"accompaniment"`` when ``residual`` and it is not
        modelled; same rate, channels and length as ``audio``.
    """
    if not rate or rate <= 0:
        raise ValueError(f"rate must be a positive sample rate in Hz, got {rate!r}")
    audio = _as_audio_array(audio)
    device = resolve_device(device)
    separator = Separator(_load_models(models, device), niter=niter, softmask=softmask,
                          residual=residual, wiener_win_len=wiener_win_len,
                          model_win_len=model_win_len, model_context=model_context).to(device)
    return separate_with(separator, audio, rate)
