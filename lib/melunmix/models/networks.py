"""Spectrogram models: the Open-Unmix baseline, the proposed MelUnmix, registry, save/load.

Both models map a mixture magnitude spectrogram ``(nb_samples, nb_channels, nb_bins,
nb_frames)`` to a target magnitude spectrogram of the same shape (a non-negative mask
times the mixture). The STFT itself lives in :mod:`melunmix.dsp.features`; the models only
remember its settings (``sample_rate``, ``n_fft``, ``n_hop``) so that a saved file says
how to feed them.

References
----------
F.-R. Stöter, S. Uhlich, A. Liutkus, Y. Mitsufuji, "Open-Unmix - A Reference
Implementation for Music Source Separation", JOSS 4(41), 2019 (model v1.3 layer by layer).
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..dsp.features import BRANCH_FEATURES, branch_transform
from ..base.files import atomic_path
from ..base.names import MODELS, canonical_model_name
from ..base.provenance import package_versions

__all__ = [
    "OpenUnmix",
    "MelUnmix",
    "ARCHITECTURES",
    "build_model",
    "save_model",
    "load_model",
    "load_model_info",
]

ArrayLike = Union[np.ndarray, Tensor, list, tuple]

# Dropout between stacked LSTM layers, Open-Unmix's value.
LSTM_DROPOUT = 0.4

FILE_FORMAT = "melunmix-model"
FILE_FORMAT_VERSION = 1


def _init_shift_scale(mean: Optional[ArrayLike], std: Optional[ArrayLike], nb_kept: int,
                      nb_full: int, mean_name: str, std_name: str) -> tuple[Tensor, Tensor]:
    """Initial values of a learnable ``(x + shift) * scale``: ``-mean`` and ``1 / std``.

    ``mean``/``std`` may have ``nb_kept`` entries or ``nb_full`` (then the first
    ``nb_kept`` are used, as Open-Unmix crops full-band scaler statistics).
    """
    def as_vector(values: ArrayLike, name: str) -> Tensor:
        vec = torch.as_tensor(np.asarray(values.detach().cpu() if isinstance(values, Tensor)
                                         else values, dtype=np.float64))
        if vec.ndim != 1 or vec.shape[0] not in (nb_kept, nb_full):
            sizes = f"{nb_kept}" if nb_kept == nb_full else f"{nb_kept} or {nb_full}"
            raise ValueError(f"{name} must be a vector of {sizes} values, got shape "
                             f"{tuple(vec.shape)}")
        if not torch.isfinite(vec).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return vec[:nb_kept]

    if mean is None:
        shift = torch.zeros(nb_kept, dtype=torch.float64)
    else:
        shift = -as_vector(mean, mean_name)
    if std is None:
        scale = torch.ones(nb_kept, dtype=torch.float64)
    else:
        std_vec = as_vector(std, std_name)
        if (std_vec <= 0).any():
            raise ValueError(f"{std_name} must be strictly positive (it is a standard deviation; "
                             "floor it, e.g. at 1e-4 * max, before building the model)")
        scale = 1.0 / std_vec
    return shift.float(), scale.float()


def _lstm(hidden_size: int, nb_layers: int, unidirectional: bool) -> nn.LSTM:
    """Open-Unmix's recurrent block: output width is ``hidden_size`` either way."""
    return nn.LSTM(
        input_size=hidden_size,
        hidden_size=hidden_size if unidirectional else hidden_size // 2,
        num_layers=nb_layers,
        bidirectional=not unidirectional,
        batch_first=False,
        dropout=LSTM_DROPOUT if nb_layers > 1 else 0.0,
    )


class OpenUnmix(nn.Module):
    """Open-Unmix (v1.3) spectrogram model, the baseline.

    Layer by layer (``H = hidden_size``, ``C = nb_channels``, ``B' = max_bin``)::

        mix    = x                                     (full band, detached)
        x      = x[..., :B']                           bandwidth crop
        x      = (x + input_mean) * input_scale        learnable, per bin
        enc    = tanh(BN(Linear(C*B' -> H, no bias)))  per frame
        rnn    = LSTM(H, 3 layers, H/2 per direction, dropout 0.4)   over frames
        x      = concat(enc, rnn)                      skip, 2H
        x      = ReLU(BN(Linear(2H -> H, no bias)))
        x      = BN(Linear(H -> C*B, no bias))
        x      = x * output_scale + output_mean        learnable, per bin, init 1
        out    = ReLU(x) * mix

    Parameters
    ----------
    nb_bins : int
        Number of STFT bins of input and output, ``n_fft // 2 + 1``.
    nb_channels : int
        Audio channels (2 for stereo).
    hidden_size : int
        Width ``H`` of the encoder, LSTM output and decoder; even when bidirectional.
    nb_layers : int
        Stacked LSTM layers (dropout 0.4 between them when more than one).
    unidirectional : bool
        Causal variant: one direction with ``H`` units instead of two with ``H/2``.
    max_bin : int or None
        Number of low bins fed to the network (e.g. 1487 for 16 kHz at 44.1 kHz / 4096,
        see :func:`melunmix.dsp.features.bandwidth_to_max_bin`); None means ``nb_bins``.
        The mask is still produced for all ``nb_bins``.
    input_mean, input_scale : array-like or None
        Training-set MEAN and STANDARD DEVIATION of the magnitude per bin (``max_bin`` or
        ``nb_bins`` values; the first ``max_bin`` are used), exactly as Open-Unmix takes
        them: the learnable parameters are initialised to ``-input_mean`` and
        ``1 / input_scale``. None: zeros / ones.
    sample_rate : float
        Sample rate in Hz the model works at (remembered for the STFT and save/load).
    n_fft, n_hop : int
        STFT settings the model's input comes from; ``nb_bins`` must be ``n_fft//2 + 1``.

    Notes
    -----
    The constructor arguments are kept in ``self.init_kwargs`` (with the statistics
    replaced by None, because after construction they live in the state dict) so
    :func:`save_model` can rebuild the model.
    """

    def __init__(self, nb_bins: int = 2049, nb_channels: int = 2, hidden_size: int = 512,
                 nb_layers: int = 3, unidirectional: bool = False, max_bin: Optional[int] = None,
                 input_mean: Optional[ArrayLike] = None, input_scale: Optional[ArrayLike] = None,
                 sample_rate: float = 44100.0, n_fft: int = 4096, n_hop: int = 1024):
        super().__init__()
        for name, value in (("nb_bins", nb_bins), ("nb_channels", nb_channels),
                            ("hidden_size", hidden_size), ("nb_layers", nb_layers),
                            ("n_fft", n_fft), ("n_hop", n_hop)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if nb_bins != n_fft // 2 + 1:
            raise ValueError(f"nb_bins={nb_bins} does not match n_fft={n_fft} (which gives "
                             f"{n_fft // 2 + 1} bins); pass nb_bins=n_fft // 2 + 1")
        if not unidirectional and hidden_size % 2:
            raise ValueError(f"hidden_size={hidden_size} must be even for the bidirectional "
                             "LSTM (hidden_size // 2 units per direction)")
        if max_bin is not None and not 0 < max_bin <= nb_bins:
            raise ValueError(f"max_bin must be in 1..nb_bins={nb_bins}, got {max_bin}")
        if not sample_rate or sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive (Hz), got {sample_rate!r}")

        self.init_kwargs = dict(
            nb_bins=int(nb_bins), nb_channels=int(nb_channels), hidden_size=int(hidden_size),
            nb_layers=int(nb_layers), unidirectional=bool(unidirectional),
            max_bin=None if max_bin is None else int(max_bin), input_mean=None,
            input_scale=None, sample_rate=float(sample_rate), n_fft=int(n_fft),
            n_hop=int(n_hop),
        )
        self.nb_output_bins = int(nb_bins)
        self.nb_bins = int(max_bin) if max_bin else self.nb_output_bins
        self.nb_channels = int(nb_channels)
        self.hidden_size = int(hidden_size)
        self.sample_rate = float(sample_rate)
        self.n_fft = int(n_fft)
        self.n_hop = int(n_hop)

        self.fc1 = nn.Linear(self.nb_bins * nb_channels, hidden_size, bias=False)
        self.bn1 = nn.BatchNorm1d(hidden_size)
        self.lstm = _lstm(hidden_size, nb_layers, unidirectional)
        self.fc2 = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        self.bn2 = nn.BatchNorm1d(hidden_size)
        self.fc3 = nn.Linear(hidden_size, self.nb_output_bins * nb_channels, bias=False)
        self.bn3 = nn.BatchNorm1d(self.nb_output_bins * nb_channels)

        shift, scale = _init_shift_scale(input_mean, input_scale, self.nb_bins,
                                         self.nb_output_bins, "input_mean", "input_scale")
        self.input_mean = nn.Parameter(shift)
        self.input_scale = nn.Parameter(scale)
        self.output_scale = nn.Parameter(torch.ones(self.nb_output_bins))
        self.output_mean = nn.Parameter(torch.ones(self.nb_output_bins))

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.nb_channels or x.shape[2] != self.nb_output_bins:
            raise ValueError(
                f"{type(self).__name__} expects a magnitude spectrogram of shape (nb_samples, "
                f"{self.nb_channels}, {self.nb_output_bins}, nb_frames), got {tuple(x.shape)}"
            )
        if x.is_complex():
            raise ValueError(f"{type(self).__name__} expects a magnitude spectrogram, got a "
                             "complex tensor; apply melunmix.dsp.features.magnitude() first")

    def encode(self, x: Tensor) -> Tensor:
        """Normalise the cropped spectrogram and encode every frame.

        Parameters
        ----------
        x : Tensor, shape (nb_frames, nb_samples, nb_channels, nb_bins)
            Mixture magnitude, frames first.

        Returns
        -------
        Tensor, shape (nb_frames, nb_samples, hidden_size), in [-1, 1]
        """
        nb_frames, nb_samples = x.shape[:2]
        x = x[..., :self.nb_bins]
        x = (x + self.input_mean) * self.input_scale
        x = self.fc1(x.reshape(-1, self.nb_channels * self.nb_bins))
        x = self.bn1(x)
        return torch.tanh(x.reshape(nb_frames, nb_samples, self.hidden_size))

    def decode(self, enc: Tensor, rnn: Tensor, mix: Tensor) -> Tensor:
        """Skip connection, decoder and mask.

        Parameters
        ----------
        enc, rnn : Tensor, shape (nb_frames, nb_samples, hidden_size)
            Encoder output and recurrent features.
        mix : Tensor, shape (nb_frames, nb_samples, nb_channels, nb_bins)
            Full-band mixture magnitude the mask is applied to.

        Returns
        -------
        Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames), non-negative
        """
        nb_frames, nb_samples = enc.shape[:2]
        x = torch.cat([enc, rnn], dim=-1)
        x = F.relu(self.bn2(self.fc2(x.reshape(-1, 2 * self.hidden_size))))
        x = self.bn3(self.fc3(x))
        x = x.reshape(nb_frames, nb_samples, self.nb_channels, self.nb_output_bins)
        x = x * self.output_scale + self.output_mean
        return (F.relu(x) * mix).permute(1, 2, 3, 0)

    def forward(self, x: Tensor) -> Tensor:
        """Estimate the target magnitude.

        Parameters
        ----------
        x : Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames)
            Mixture magnitude spectrogram.

        Returns
        -------
        Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames)
            Target magnitude estimate, ``ReLU(mask) * x``.
        """
        self._check_input(x)
        x = x.permute(3, 0, 1, 2)  # frames first: the LSTM runs over time
        # the mask multiplies the input, but no gradient flows into it (as Open-Unmix)
        mix = x.detach()
        enc = self.encode(x)
        rnn, _ = self.lstm(enc)
        return self.decode(enc, rnn, mix)


class MelUnmix(OpenUnmix):
    """The proposed model: Open-Unmix plus a parallel mel (or MFCC) BLSTM branch.

    ::

        linear branch (= OpenUnmix):  enc = tanh(BN(fc1((x[:max_bin] + m) * s)))
                                      rnn = LSTM(enc)
        mel branch:                   f   = log-mel(x) or MFCC(x)      full band
                                      f   = (f + mel_mean) * mel_scale  learnable, per band
                                      g   = tanh(BN(fc_mel(f)))
                                      rnn_mel = LSTM_mel(g)             same sizes
        fusion:                       h = rnn + rnn_mel
        decoder (= OpenUnmix):        concat(enc, h) -> fc2-BN-ReLU -> fc3-BN
                                      -> output scale/mean -> ReLU(.) * x

    Design choices (the poster states only "a second BLSTM fed with a mel spectrogram,
    the two branches' features added"; the rest is ours):

    - **Mel input is the same mixture magnitude, full band.** No second STFT: the mel
      filterbank (``n_mels`` bands, 0 Hz to ``fmax``, default Nyquist) is applied to the
      magnitude the model already gets, so the branch adds a perceptual, compact view
      of the same frames, including the bins above ``max_bin`` the linear branch drops.
    - **Log compression (power mel in dB, floor ``amin``).** Mel band energies span
      many orders of magnitude; the log makes them roughly Gaussian per band so the
      learnable mean/scale normalisation works, and it is what MFCCs are built on. The
      ``amin`` floor (1e-10 power, -100 dB) keeps silence finite. No ``top_db`` clip,
      so a frame's features do not depend on the excerpt's loudest frame (training
      chunks and whole songs see the same transform).
    - **MFCC option** (``feature="mfcc"``): the orthonormal DCT-II of that log-mel,
      first ``n_mfcc`` coefficients, as librosa.
    - **Learnable per-band normalisation** initialised from dataset statistics of the
      branch feature (``mel_mean``, ``mel_scale``), mirroring the linear branch's input
      normalisation.
    - **Fusion by addition** of the two LSTM outputs, as the poster describes: both are
      ``hidden_size`` wide, so the decoder is unchanged in size and the mel branch acts
      as a learned correction of the linear branch's recurrent features.
    - **Skip connection from the linear branch's encoder**: the decoder input is
      ``concat(enc, rnn + rnn_mel)``, exactly the baseline's skip, so with the mel branch
      silenced the model reduces to Open-Unmix.
    - The mask is applied to the full-band mixture, as the baseline.

    Parameters
    ----------
    nb_bins, nb_channels, hidden_size, nb_layers, unidirectional, max_bin, input_mean,
    input_scale, sample_rate, n_fft, n_hop
        As :class:`OpenUnmix` (the mel branch uses the same hidden size and layers).
    n_mels : int
        Bands of the branch's filterbank (mel, or linear for ``feature="linear"``; the
        MFCCs are computed from ``n_mels`` mel bands). The name, and those of the branch's
        weights (``mel_mean``, ``mel_scale``, ``fc_mel``, ``bn_mel``, ``lstm_mel``), are
        kept for every feature: saved models and profiles use them.
    feature : {"mel", "mfcc", "linear"}
        Branch feature: log-mel (``n_mels`` features), MFCC (``n_mfcc`` features), or
        the control: a log filterbank of ``n_mels`` bands equally spaced in Hz (the
        mel model's exact parameter count, only the frequency scale differs).
    n_mfcc : int
        Coefficients kept when ``feature="mfcc"``.
    mel_mean, mel_scale : array-like or None
        Training-set MEAN and STANDARD DEVIATION per band of :meth:`branch_features`
        (``nb_features`` values); parameters are initialised to ``-mel_mean`` and
        ``1 / mel_scale``, as for ``input_mean``/``input_scale``. None: zeros / ones.
    fmin, fmax : float
        Mel band range in Hz (``fmax=None``: ``sample_rate / 2``).
    htk : bool
        HTK mel formula instead of Slaney's.
    """

    def __init__(self, nb_bins: int = 2049, nb_channels: int = 2, hidden_size: int = 512,
                 nb_layers: int = 3, unidirectional: bool = False, max_bin: Optional[int] = None,
                 input_mean: Optional[ArrayLike] = None, input_scale: Optional[ArrayLike] = None,
                 sample_rate: float = 44100.0, n_fft: int = 4096, n_hop: int = 1024,
                 n_mels: int = 64, feature: str = "mel", n_mfcc: int = 20,
                 mel_mean: Optional[ArrayLike] = None, mel_scale: Optional[ArrayLike] = None,
                 fmin: float = 0.0, fmax: Optional[float] = None, htk: bool = False):
        super().__init__(nb_bins=nb_bins, nb_channels=nb_channels, hidden_size=hidden_size,
                         nb_layers=nb_layers, unidirectional=unidirectional, max_bin=max_bin,
                         input_mean=input_mean, input_scale=input_scale,
                         sample_rate=sample_rate, n_fft=n_fft, n_hop=n_hop)
        if feature not in BRANCH_FEATURES:
            raise ValueError(f"feature must be one of {list(BRANCH_FEATURES)}, got {feature!r}")
        self.feature = feature
        self.features = branch_transform(feature, sample_rate, n_fft, n_mels=n_mels,
                                         n_mfcc=n_mfcc, fmin=fmin, fmax=fmax, htk=htk)
        self.nb_features = self.features.nb_features
        self.init_kwargs.update(
            n_mels=int(n_mels), feature=feature, n_mfcc=int(n_mfcc), mel_mean=None,
            mel_scale=None, fmin=float(fmin), fmax=None if fmax is None else float(fmax),
            htk=bool(htk),
        )

        shift, scale = _init_shift_scale(mel_mean, mel_scale, self.nb_features,
                                         self.nb_features, "mel_mean", "mel_scale")
        self.mel_mean = nn.Parameter(shift)
        self.mel_scale = nn.Parameter(scale)
        self.fc_mel = nn.Linear(self.nb_features * self.nb_channels, self.hidden_size,
                                bias=False)
        self.bn_mel = nn.BatchNorm1d(self.hidden_size)
        self.lstm_mel = _lstm(self.hidden_size, nb_layers, unidirectional)

    def branch_features(self, mag: Tensor) -> Tensor:
        """The branch's feature, before the learnable normalisation.

        Use it to compute the dataset statistics ``mel_mean``/``mel_scale`` with exactly
        the transform the model applies (equivalently
        :func:`melunmix.dsp.features.branch_transform` with the same settings).

        Parameters
        ----------
        mag : Tensor, shape (..., nb_bins, nb_frames)
            Magnitude spectrogram (e.g. ``(nb_samples, nb_channels, nb_bins, nb_frames)``).

        Returns
        -------
        Tensor, shape (..., nb_features, nb_frames)
            Log-mel power in dB (``feature="mel"``), MFCCs (``feature="mfcc"``) or the log
            power of linear-frequency bands (``feature="linear"``).
        """
        return self.features(mag)

    def encode_branch(self, mag: Tensor) -> Tensor:
        """The feature branch (mel, MFCC or linear bands) up to its encoder.

        Parameters
        ----------
        mag : Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames)

        Returns
        -------
        Tensor, shape (nb_frames, nb_samples, hidden_size), in [-1, 1]
        """
        nb_samples, _, _, nb_frames = mag.shape
        f = self.branch_features(mag).permute(3, 0, 1, 2)  # (frames, samples, channels, feats)
        f = (f + self.mel_mean) * self.mel_scale
        g = self.bn_mel(self.fc_mel(f.reshape(-1, self.nb_channels * self.nb_features)))
        return torch.tanh(g.reshape(nb_frames, nb_samples, self.hidden_size))

    def forward(self, x: Tensor) -> Tensor:
        """Estimate the target magnitude.

        Parameters
        ----------
        x : Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames)
            Mixture magnitude spectrogram.

        Returns
        -------
        Tensor, shape (nb_samples, nb_channels, nb_bins, nb_frames)
        """
        self._check_input(x)
        g = self.encode_branch(x)
        x = x.permute(3, 0, 1, 2)
        mix = x.detach()
        enc = self.encode(x)
        rnn, _ = self.lstm(enc)
        rnn_mel, _ = self.lstm_mel(g)
        return self.decode(enc, rnn + rnn_mel, mix)


#: The network of each of the study's models (:data:`melunmix.base.names.MODELS`, their names and
#: order): name -> (class, fixed constructor arguments).
ARCHITECTURES: dict[str, tuple[type, dict[str, Any]]] = {
    "openunmix": (OpenUnmix, {}),                    # the baseline
    "melunmix": (MelUnmix, {"feature": "mel"}),      # the proposed model
    "mfccunmix": (MelUnmix, {"feature": "mfcc"}),    # the poster's future work: MFCC branch
    "linunmix": (MelUnmix, {"feature": "linear"}),   # control: linear-frequency branch
    # control: Open-Unmix widened to the proposed model's parameter count ("more weights"
    # without a second branch); its hidden size is derived (matched_hidden_size)
    "wideunmix": (OpenUnmix, {"width_of": "melunmix"}),
}
if tuple(ARCHITECTURES) != tuple(MODELS):
    raise ImportError(f"melunmix.models.networks.ARCHITECTURES {list(ARCHITECTURES)} must build exactly the models of "
                      f"melunmix.base.names.MODELS {list(MODELS)}, in their order")
#: The classes a weights file may name (save/load), derived from :data:`ARCHITECTURES`.
_CLASSES = {cls.__name__: cls for cls, _ in ARCHITECTURES.values()}

#: Arguments of a two-branch model that a width-matched model needs to count its reference.
_BRANCH_ARGS = ("feature", "n_mels", "n_mfcc", "fmin", "fmax")


def trainable_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (the count the study's tables report)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def matched_hidden_size(reference: str, **kwargs: Any) -> int:
    """The even hidden size at which :class:`OpenUnmix` has as many trainable parameters as
    the model ``reference`` built with ``kwargs`` (its own hidden size included): the
    closest from below or above, the smaller on a tie. Counted on torch's ``meta`` device
    (no memory, no weights drawn)."""
    with torch.device("meta"):
        target = trainable_parameters(build_model(reference, **kwargs))
        plain = {k: v for k, v in kwargs.items() if k not in _BRANCH_ARGS
                 and k not in ("mel_mean", "mel_scale")}

        def count(hidden: int) -> int:
            return trainable_parameters(OpenUnmix(**{**plain, "hidden_size": hidden}))

        step = 1 if plain.get("unidirectional") else 2
        low = int(plain.get("hidden_size", 512))
        low -= low % step
        high = low
        while count(high) < target:
            low, high = high, high * 2
        while high - low > step:  # count grows with the width: bisect on even sizes
            middle = (low + high) // 2
            middle -= middle % step
            if count(middle) < target:
                low = middle
            else:
                high = middle
    return low if target - count(low) <= count(high) - target else high


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Construct a model by name.

    Parameters
    ----------
    name : str
        A model of :data:`melunmix.base.names.MODELS` (``"openunmix"``, ``"melunmix"``, ``"mfccunmix"``,
        ``"linunmix"``, ``"wideunmix"``) or an alias (:data:`melunmix.base.names.MODEL_ALIASES`);
        case-insensitive. The two-branch variants fix ``feature``; the width-matched
        control (``width_of``) takes the reference's arguments (``hidden_size``,
        ``n_mels``...) and builds an :class:`OpenUnmix` of :func:`matched_hidden_size`.
    **kwargs
        Constructor arguments of :class:`OpenUnmix` / :class:`MelUnmix`.

    Returns
    -------
    nn.Module
    """
    key = canonical_model_name(name)
    cls, fixed = ARCHITECTURES[key]
    if "width_of" in fixed:  # a width-matched control: the reference's count, no branch
        reference = fixed["width_of"]
        branch = {k: kwargs.pop(k) for k in _BRANCH_ARGS if k in kwargs}
        statistics = {k: kwargs[k] for k in ("input_mean", "input_scale") if k in kwargs}
        counted = {k: v for k, v in kwargs.items() if k not in statistics}
        branch.pop("feature", None)
        hidden = matched_hidden_size(reference, **counted, **branch)
        return cls(**{**kwargs, "hidden_size": hidden})
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"{cls.__name__} got unknown argument(s) {unknown}; accepted: "
                         f"{sorted(accepted)}")
    clash = {k: v for k, v in kwargs.items() if k in fixed and v != fixed[k]}
    if clash:
        raise ValueError(f"model {key!r} fixes {fixed}; got {clash}")
    return cls(**{**kwargs, **fixed})


def save_model(model: nn.Module, path: Union[str, os.PathLike], **extra: Any) -> Path:
    """Save a model to one file that :func:`load_model` rebuilds it from.

    The file (``torch.save`` of a dict) holds the class name, constructor arguments,
    weights (state dict, including input statistics and the mel filterbank), sample rate,
    STFT settings, library versions (:func:`melunmix.base.provenance.package_versions`) and
    ``extra``. It is written to a temporary file in the same folder and renamed, so a
    crash never leaves a truncated model.

    Parameters
    ----------
    model : OpenUnmix or MelUnmix
        The model (any device; weights are stored on CPU).
    path : str or PathLike
        Destination file (conventionally ``*.pt``); parent folders are created.
    **extra
        JSON-serialisable metadata (e.g. ``target="vocals"``, ``epoch=12``).

    Returns
    -------
    Path
        The written file.
    """
    class_name = type(model).__name__
    if class_name not in _CLASSES or not hasattr(model, "init_kwargs"):
        raise ValueError(f"save_model supports {sorted(_CLASSES)}, got {class_name}")
    for key, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"extra metadata {key!r} must be JSON-serialisable "
                             f"(numbers, strings, lists, dicts): {err}") from None
    path = Path(path)
    payload = {
        "format": FILE_FORMAT,
        "format_version": FILE_FORMAT_VERSION,
        "class_name": class_name,
        "kwargs": dict(model.init_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "sample_rate": model.sample_rate,
        "n_fft": model.n_fft,
        "n_hop": model.n_hop,
        "versions": package_versions(),
        "nb_parameters": sum(p.numel() for p in model.parameters()),
        "extra": dict(extra),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_torch_file(path: Union[str, os.PathLike], map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, no code runs.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not readable so (corrupt, not a torch file, or a pickle of more than tensors), in
        one line. torch's own text advises ``weights_only=False``, which runs the file's
        code: it is never repeated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated / foreign files
        raise UnreadableModelFile(path, f"it is corrupt, not a torch file, or holds more than tensors and plain "
                                        f"values (torch: {type(err).__name__})") from None


class UnreadableModelFile(ValueError):
    """A file :func:`read_torch_file` cannot read: ``path`` and ``reason``."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: not a model file: {reason}")
        self.path, self.reason = path, reason


def is_model_payload(payload: Any) -> bool:
    """Whether a loaded torch file is a melunmix model file (:func:`save_model`)."""
    return isinstance(payload, dict) and payload.get("format") == FILE_FORMAT


def _checked(payload: Any, path: Union[str, os.PathLike]) -> dict:
    if not is_model_payload(payload):
        raise ValueError(f"{path} is not a melunmix model file (written by "
                         "melunmix.models.networks.save_model); a plain state dict or another "
                         "project's checkpoint cannot be loaded with load_model")
    if payload.get("format_version", 0) > FILE_FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer melunmix (file format "
                         f"{payload['format_version']} > {FILE_FORMAT_VERSION}); upgrade melunmix")
    missing = [k for k in ("class_name", "kwargs", "state_dict") if k not in payload]
    if missing or payload["class_name"] not in _CLASSES:
        raise ValueError(f"{path} is an incomplete or unknown melunmix model file "
                         f"(missing {missing}, class {payload.get('class_name')!r})")
    return payload


def _read(path: Union[str, os.PathLike], map_location) -> dict:
    try:
        payload = read_torch_file(path, map_location)
    except UnreadableModelFile as err:
        raise ValueError(f"cannot read model file {path}: {err.reason}; pass a model file written by melunmix "
                         "(train, or melunmix.models.networks.save_model)") from None
    return _checked(payload, path)


def model_from_payload(payload: dict, path: Union[str, os.PathLike], map_location: Any = "cpu") -> nn.Module:
    """The model of a loaded melunmix model file (what :func:`load_model` builds), without
    reading the file again; ``path`` names it in errors."""
    payload = _checked(payload, path)
    cls = _CLASSES[payload["class_name"]]
    try:
        model = cls(**payload["kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"cannot rebuild {payload['class_name']} from {path}: {err}") from err
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    return model.eval()


def load_model_info(path: Union[str, os.PathLike]) -> dict:
    """Metadata of a saved model, without building it.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    dict
        ``class_name``, ``kwargs``, ``sample_rate``, ``n_fft``, ``n_hop``, ``versions``,
        ``extra``, ``format_version`` and ``nb_parameters`` (learnable weights).
    """
    payload = _read(path, "cpu")
    return {k: v for k, v in payload.items() if k not in ("format", "state_dict")}


def load_model(path: Union[str, os.PathLike], map_location: Any = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model`.

    Parameters
    ----------
    path : str or PathLike
    map_location : str, torch.device or callable
        Where the weights go (as :func:`torch.load`).

    Returns
    -------
    OpenUnmix or MelUnmix
        In eval mode (call ``.train()`` to fine-tune); metadata in :func:`load_model_info`.
    """
    return model_from_payload(_read(path, map_location), path, map_location)
