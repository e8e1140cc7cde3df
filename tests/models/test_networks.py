"""melunmix.models.networks: Open-Unmix faithfulness, the mel branch, registry and save/load."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from melunmix.models.networks import (
    ARCHITECTURES,
    MelUnmix,
    OpenUnmix,
    build_model,
    load_model,
    load_model_info,
    save_model,
)
from melunmix.base.names import MODELS

SR = 8000.0
N_FFT = 256
NB_BINS = N_FFT // 2 + 1  # 129
TINY = dict(nb_bins=NB_BINS, nb_channels=2, hidden_size=16, max_bin=80, sample_rate=SR,
            n_fft=N_FFT, n_hop=64)
TINY_MEL = dict(TINY, n_mels=12)


def nb_params(model):
    return sum(p.numel() for p in model.parameters())


# Closed forms, written from the architecture description (REFERENCE.md), not the module.
def lstm_count(hidden, nb_layers, unidirectional):
    units = hidden if unidirectional else hidden // 2
    nb_directions = 1 if unidirectional else 2
    # every layer's input is `hidden` wide (first: encoder; later: both directions)
    per_direction = 4 * units * (hidden + units) + 2 * 4 * units  # W_ih, W_hh, b_ih, b_hh
    return nb_layers * nb_directions * per_direction


def umx_count(hidden, nb_channels, nb_bins, max_bin, nb_layers=3, unidirectional=False):
    max_bin = max_bin or nb_bins
    return (2 * max_bin                                   # input mean / scale
            + max_bin * nb_channels * hidden + 2 * hidden  # fc1 + bn1
            + lstm_count(hidden, nb_layers, unidirectional)
            + 2 * hidden * hidden + 2 * hidden             # fc2 + bn2
            + hidden * nb_bins * nb_channels + 2 * nb_bins * nb_channels  # fc3 + bn3
            + 2 * nb_bins)                                 # output scale / mean


def melunmix_count(hidden, nb_channels, nb_bins, max_bin, nb_features, nb_layers=3,
                   unidirectional=False):
    return (umx_count(hidden, nb_channels, nb_bins, max_bin, nb_layers, unidirectional)
            + 2 * nb_features                                  # mel mean / scale
            + nb_features * nb_channels * hidden + 2 * hidden  # fc_mel + bn_mel
            + lstm_count(hidden, nb_layers, unidirectional))


CONFIGS = [  # hidden, channels, nb_bins, max_bin, layers, unidirectional
    (512, 2, 2049, 1487, 3, False),
    (64, 1, 257, None, 3, False),
    (32, 2, 257, 100, 1, False),
    (48, 2, 513, 300, 2, True),
    (16, 3, 129, 64, 3, True),
]


def config_kwargs(hidden, channels, nb_bins, max_bin, layers, uni):
    return dict(nb_bins=nb_bins, nb_channels=channels, hidden_size=hidden, max_bin=max_bin,
                nb_layers=layers, unidirectional=uni, n_fft=2 * (nb_bins - 1),
                n_hop=(nb_bins - 1) // 2)


@pytest.mark.parametrize("config", CONFIGS)
def test_openunmix_parameter_count(config):
    model = OpenUnmix(**config_kwargs(*config))
    assert nb_params(model) == umx_count(*config[:4], nb_layers=config[4],
                                         unidirectional=config[5])


def test_openunmix_reference_size():
    model = OpenUnmix(max_bin=1487)
    assert round(nb_params(model) / 1e6, 1) == 8.9  # REFERENCE.md: about 8.9 M


@pytest.mark.parametrize("config", CONFIGS[1:])
@pytest.mark.parametrize("feature", ["mel", "mfcc", "linear"])
def test_melunmix_parameter_count(config, feature):
    model = MelUnmix(**config_kwargs(*config), feature=feature, n_mels=16, n_mfcc=7,
                     sample_rate=16000.0)
    nb_features = 7 if feature == "mfcc" else 16
    assert model.nb_features == nb_features
    assert nb_params(model) == melunmix_count(*config[:4], nb_features, nb_layers=config[4],
                                              unidirectional=config[5])


def test_openunmix_layers():
    model = OpenUnmix(**dict(TINY, nb_layers=3))
    assert model.fc1.in_features == 80 * 2 and model.fc1.bias is None
    assert model.lstm.hidden_size == 8 and model.lstm.bidirectional
    assert model.lstm.dropout == pytest.approx(0.4)
    assert model.fc2.in_features == 32 and model.fc2.bias is None
    assert model.fc3.out_features == NB_BINS * 2 and model.fc3.bias is None
    single = OpenUnmix(**dict(TINY, nb_layers=1, unidirectional=True))
    assert single.lstm.dropout == 0 and single.lstm.hidden_size == 16
    assert (model.sample_rate, model.n_fft, model.n_hop) == (SR, N_FFT, 64)


def test_input_statistics_initialise_learnable_shift_and_scale():
    rng = np.random.default_rng(0)
    mean, std = rng.random(NB_BINS), rng.random(NB_BINS) + 0.1
    model = OpenUnmix(**TINY, input_mean=mean, input_scale=std)  # full-band stats cropped
    np.testing.assert_allclose(model.input_mean.detach(), -mean[:80], rtol=1e-6)
    np.testing.assert_allclose(model.input_scale.detach(), 1 / std[:80], rtol=1e-6)
    assert model.input_mean.requires_grad and model.output_scale.requires_grad
    torch.testing.assert_close(model.output_mean.detach(), torch.ones(NB_BINS))
    cropped = OpenUnmix(**TINY, input_mean=torch.tensor(mean[:80]))
    torch.testing.assert_close(cropped.input_mean, model.input_mean)
    with pytest.raises(ValueError, match="input_mean must be a vector of 80 or 129"):
        OpenUnmix(**TINY, input_mean=mean[:50])
    with pytest.raises(ValueError, match="input_scale must be strictly positive"):
        OpenUnmix(**TINY, input_scale=np.zeros(80))


def test_constructor_errors():
    with pytest.raises(ValueError, match="nb_bins=2049 does not match n_fft=256"):
        OpenUnmix(n_fft=256)
    with pytest.raises(ValueError, match="even"):
        OpenUnmix(**dict(TINY, hidden_size=15))
    with pytest.raises(ValueError, match="max_bin"):
        OpenUnmix(**dict(TINY, max_bin=500))
    with pytest.raises(ValueError, match="feature"):
        MelUnmix(**TINY_MEL, feature="chroma")
    with pytest.raises(ValueError, match=r"\(nb_samples, 2, 129, nb_frames\)"):
        OpenUnmix(**TINY)(torch.rand(1, 1, NB_BINS, 5))


def mixture(nb_samples=2, nb_frames=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(nb_samples, 2, NB_BINS, nb_frames, generator=g) * 3


@pytest.mark.parametrize("cls", [OpenUnmix, MelUnmix])
def test_output_shape_and_mask(cls):
    torch.manual_seed(0)
    model = cls(**(TINY_MEL if cls is MelUnmix else TINY))
    x = mixture()
    y = model(x)
    assert y.shape == x.shape and torch.all(y >= 0)
    # decoder silenced: BN3 (eval, fresh stats) outputs its bias 0, so the mask is
    # ReLU(output_mean) per bin, whatever the encoder and LSTMs do
    model.eval()
    with torch.no_grad():
        model.bn3.reset_running_stats()  # the training-mode call above updated them
        model.fc3.weight.zero_()
        model.output_mean.copy_(torch.linspace(-1, 2, NB_BINS))
    expected = torch.relu(model.output_mean.detach())[None, None, :, None] * x
    torch.testing.assert_close(model(x), expected)


def test_openunmix_ignores_bins_above_max_bin_except_in_the_mask():
    torch.manual_seed(1)
    model = OpenUnmix(**TINY).eval()
    x = mixture()
    x_high = x.clone()
    x_high[:, :, 80:] *= 5
    with torch.no_grad():
        torch.testing.assert_close(model(x)[:, :, :80], model(x_high)[:, :, :80])
        assert not torch.allclose(model(x)[:, :, 80:], model(x_high)[:, :, 80:])
        # the mel branch is full band: the same change reaches the low-bin output
        mel = MelUnmix(**TINY_MEL).eval()
        assert not torch.allclose(mel(x)[:, :, :80], mel(x_high)[:, :, :80])


@pytest.mark.parametrize("cls", [OpenUnmix, MelUnmix])
def test_lstm_runs_over_frames(cls):
    torch.manual_seed(2)
    kwargs = TINY_MEL if cls is MelUnmix else TINY
    x = mixture(nb_frames=10)
    x_late = x.clone()
    x_late[..., 7:] += 1.0  # change only the last frames
    with torch.no_grad():
        causal = cls(**kwargs, unidirectional=True).eval()
        torch.testing.assert_close(causal(x)[..., :7], causal(x_late)[..., :7])
        both_ways = cls(**kwargs).eval()
        assert not torch.allclose(both_ways(x)[..., :7], both_ways(x_late)[..., :7])
        # examples of a batch never see each other
        x_other = x.clone()
        x_other[1] += 1.0
        torch.testing.assert_close(both_ways(x)[0], both_ways(x_other)[0])


def test_mel_branch_influences_output_and_gets_gradients():
    torch.manual_seed(3)
    model = MelUnmix(**TINY_MEL).eval()
    x = mixture()
    with torch.no_grad():
        before = model(x)
        model.fc_mel.weight.add_(0.5 * torch.randn_like(model.fc_mel.weight))
        assert (model(x) - before).abs().max() > 1e-3
    model.train()
    model(x).square().mean().backward()
    for param in (model.lstm_mel.weight_ih_l0, model.fc_mel.weight, model.mel_mean):
        assert param.grad is not None and param.grad.abs().max() > 0


def test_melunmix_with_silenced_mel_branch_is_openunmix():
    torch.manual_seed(4)
    baseline = OpenUnmix(**TINY).eval()
    proposed = MelUnmix(**TINY_MEL).eval()
    missing, unexpected = proposed.load_state_dict(baseline.state_dict(), strict=False)
    assert not unexpected and all(k.split(".")[0] in {"mel_mean", "mel_scale", "fc_mel",
                                                      "bn_mel", "lstm_mel", "features"}
                                  for k in missing)
    with torch.no_grad():
        for param in proposed.lstm_mel.parameters():
            param.zero_()  # every gate 0.5, cell input tanh(0) = 0: the branch outputs 0
        x = mixture()
        torch.testing.assert_close(proposed(x), baseline(x))


@pytest.mark.parametrize("feature", ["mel", "mfcc"])
def test_mel_features_follow_constructor_settings(feature):
    model = MelUnmix(**dict(TINY_MEL, feature=feature, n_mfcc=6, fmin=100.0, fmax=3500.0,
                            htk=True))
    mag = mixture(nb_samples=1).double()
    ours = model.branch_features(mag)
    assert ours.shape == (1, 2, 12 if feature == "mel" else 6, 12)
    power_mel = librosa.feature.melspectrogram(S=mag[0, 1].numpy() ** 2, sr=SR, n_mels=12,
                                               fmin=100.0, fmax=3500.0, htk=True)
    ref = librosa.power_to_db(power_mel, top_db=None)
    if feature == "mfcc":
        ref = librosa.feature.mfcc(S=ref, n_mfcc=6)
    np.testing.assert_allclose(ours[0, 1].numpy(), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_mel_statistics_initialise_branch_normalisation():
    mean, std = np.linspace(-80, 10, 12), np.linspace(5, 20, 12)
    model = MelUnmix(**TINY_MEL, mel_mean=mean, mel_scale=std)
    np.testing.assert_allclose(model.mel_mean.detach(), -mean, rtol=1e-6)
    np.testing.assert_allclose(model.mel_scale.detach(), 1 / std, rtol=1e-6)
    with pytest.raises(ValueError, match="mel_mean must be a vector of 12"):
        MelUnmix(**TINY_MEL, mel_mean=np.zeros(20))


# --- registry --------------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("openunmix", OpenUnmix), ("baseline", OpenUnmix),
                                      ("UMX", OpenUnmix), ("melunmix", MelUnmix),
                                      ("proposed", MelUnmix), ("mel", MelUnmix)])
def test_build_model_names(name, cls):
    model = build_model(name, **(TINY_MEL if cls is MelUnmix else TINY))
    assert type(model) is cls


def test_build_model_errors():
    assert tuple(ARCHITECTURES) == tuple(MODELS) == ("openunmix", "melunmix", "mfccunmix", "linunmix", "wideunmix")
    with pytest.raises(ValueError, match="unknown model name 'demucs'.*'openunmix'.*'melunmix'"):
        build_model("demucs")
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['n_mels'\]"):
        build_model("baseline", **TINY_MEL)


# --- save / load -----------------------------------------------------------------------

def randomised(model, seed):
    """Every weight and BN statistic away from its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(model.parameters()) + [b for n, b in model.named_buffers()
                                                  if "running" in n]:
            tensor.copy_(torch.rand(tensor.shape, generator=g) * 0.5 + 0.1)
    return model.eval()


@pytest.mark.parametrize("name,kwargs", [("openunmix", TINY), ("melunmix", TINY_MEL),
                                         ("mfccunmix", dict(TINY_MEL, n_mfcc=5, htk=True)),
                                         ("linunmix", TINY_MEL)])
def test_save_load_round_trip(tmp_path, name, kwargs):
    model = randomised(build_model(name, **kwargs, input_mean=np.full(80, 0.3)), seed=5)
    path = save_model(model, tmp_path / "models" / "vocals.pt", target="vocals", epoch=3)
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocals.pt"]  # no temp left
    loaded = load_model(path)
    assert type(loaded) is type(model) and not loaded.training
    x = mixture()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    info = load_model_info(path)
    assert info["class_name"] == type(model).__name__
    assert (info["sample_rate"], info["n_fft"], info["n_hop"]) == (SR, N_FFT, 64)
    assert info["extra"] == {"target": "vocals", "epoch": 3}
    assert info["versions"]["torch"] == torch.__version__ and "melunmix" in info["versions"]
    assert info["nb_parameters"] == nb_params(model)
    assert info["kwargs"]["input_mean"] is None  # the statistics live in the weights
    torch.testing.assert_close(loaded.input_mean, model.input_mean)


def test_save_model_rejects_non_json_metadata_and_keeps_old_file(tmp_path):
    model = OpenUnmix(**TINY)
    path = save_model(model, tmp_path / "m.pt", epoch=1)
    with pytest.raises(ValueError, match="'history'.*JSON"):
        save_model(model, path, history=object())
    assert load_model_info(path)["extra"] == {"epoch": 1}


def test_load_model_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_model(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="garbage.pt.*corrupt"):
        load_model(garbage)
    truncated = tmp_path / "truncated.pt"
    data = save_model(OpenUnmix(**TINY), tmp_path / "full.pt").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_model(truncated)
    foreign = tmp_path / "state_dict.pth"
    torch.save(OpenUnmix(**TINY).state_dict(), foreign)
    with pytest.raises(ValueError, match="state_dict.pth is not a melunmix model file"):
        load_model_info(foreign)
    # A text file and a pickle of arbitrary objects: one line, and never torch's advice to
    # load with weights_only=False (which would run the file's code).
    text = tmp_path / "README.md"
    text.write_text("# not a model\n")
    unsafe = tmp_path / "objects.pt"
    torch.save({"format": "x", "thing": Path("/tmp")}, unsafe)
    for path in (text, unsafe):
        with pytest.raises(ValueError, match=f"{path.name}: it is corrupt, not a torch file") as err:
            load_model(path)
        assert "weights_only" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,kwargs", [("openunmix", TINY), ("melunmix", TINY_MEL)])
def test_cuda_matches_cpu(tmp_path, name, kwargs):
    model = randomised(build_model(name, **kwargs), seed=6)
    x = mixture()
    with torch.no_grad():
        expected = model(x)
        on_gpu = model.to("cuda")(x.to("cuda"))
    torch.testing.assert_close(on_gpu.cpu(), expected, rtol=1e-4, atol=1e-4)
    path = save_model(model, tmp_path / "gpu.pt")
    loaded = load_model(path, map_location="cuda")
    assert next(loaded.parameters()).is_cuda
    with torch.no_grad():
        torch.testing.assert_close(loaded(x.cuda()), on_gpu)


def test_registry_variants_fix_the_branch_feature_and_control_matches_capacity():
    kwargs = dict(TINY_MEL, n_mfcc=6)
    kwargs.pop("feature", None)
    built = {name: build_model(name, **kwargs) for name in ("melunmix", "mfccunmix", "linunmix")}
    assert {name: m.feature for name, m in built.items()} == {
        "melunmix": "mel", "mfccunmix": "mfcc", "linunmix": "linear"}
    # The control differs from the proposed model only in its filterbank: same weights count.
    assert nb_params(built["linunmix"]) == nb_params(built["melunmix"])
    assert not torch.equal(built["linunmix"].features.mel.fb, built["melunmix"].features.mel.fb)
    assert build_model("control", **kwargs).feature == "linear"
    with pytest.raises(ValueError, match="fixes"):
        build_model("linunmix", **dict(kwargs, feature="mel"))
    with pytest.raises(ValueError, match="valid names"):
        build_model("chroma", **kwargs)


@pytest.mark.parametrize("hidden, n_mels, n_fft, max_bin", [(128, 64, 2048, 744), (32, 32, 1024, 372),
                                                             (512, 64, 4096, 1487)])
def test_width_matched_control_is_open_unmix_with_the_proposed_models_parameter_count(
        hidden, n_mels, n_fft, max_bin, tmp_path):
    from melunmix.models.networks import OpenUnmix, build_model, load_model, save_model, trainable_parameters

    kwargs = dict(nb_bins=n_fft // 2 + 1, n_fft=n_fft, n_hop=n_fft // 4, hidden_size=hidden,
                  max_bin=max_bin, n_mels=n_mels, n_mfcc=20)
    with torch.device("meta"):
        wide = build_model("wideunmix", **kwargs)
        proposed = build_model("melunmix", **kwargs)
        smaller = OpenUnmix(**{k: v for k, v in kwargs.items() if k not in ("n_mels", "n_mfcc")}
                            | {"hidden_size": wide.hidden_size - 2})
        larger = OpenUnmix(**{k: v for k, v in kwargs.items() if k not in ("n_mels", "n_mfcc")}
                           | {"hidden_size": wide.hidden_size + 2})
    assert type(wide) is OpenUnmix and wide.hidden_size % 2 == 0 and wide.hidden_size > hidden
    target = trainable_parameters(proposed)
    gap = abs(trainable_parameters(wide) - target)
    # the closest even width: both neighbours are farther from the proposed model's count
    assert gap <= abs(trainable_parameters(smaller) - target)
    assert gap <= abs(trainable_parameters(larger) - target)
    assert gap / target < (0.01 if hidden >= 128 else 0.03)  # one width step is ~2 % at 32
    if hidden == 32:  # a real one saves and loads as a plain Open-Unmix of that width
        real = build_model("wideunmix", **kwargs)
        loaded = load_model(save_model(real, tmp_path / "wide.pt"))
        assert type(loaded) is OpenUnmix and loaded.hidden_size == wide.hidden_size
