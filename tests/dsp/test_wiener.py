"""Wiener filter: values against norbert (independent numpy reference) and closed forms."""

import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    # norbert 0.2.1 imports a deprecated scipy.ndimage namespace; nothing we can act on
    warnings.simplefilter("ignore", DeprecationWarning)
    import norbert

from melunmix.dsp.wiener import (add_residual, expectation_maximization, invert, local_gaussian_model,
                                 mixture_phase, softmask, wiener)

COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
# float64 must agree with norbert to rounding; float32 to single precision
RTOL = {torch.float32: 2e-5, torch.float64: 1e-10}


# Tiny tensors: one intra-op thread is faster than two fighting over shared cores.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


def random_problem(nb_frames=16, nb_bins=7, nb_channels=2, nb_sources=2, seed=0, scale=30.0):
    """Random source magnitudes and a mixture STFT (numpy, float64 / complex128)."""
    rng = np.random.default_rng(seed)
    v = rng.random((nb_frames, nb_bins, nb_channels, nb_sources)) * scale / 10
    x = (rng.standard_normal((nb_frames, nb_bins, nb_channels))
         + 1j * rng.standard_normal((nb_frames, nb_bins, nb_channels))) * scale
    return v, x


def to_torch(v, x, dtype, device="cpu"):
    return (torch.from_numpy(v).to(device=device, dtype=dtype),
            torch.from_numpy(x).to(device=device, dtype=COMPLEX[dtype]))


def max_rel_error(estimate, reference):
    return np.abs(estimate - reference).max() / np.abs(reference).max()


def check_against_norbert(device, dtype, nb_channels, nb_sources, iterations, use_softmask):
    v, x = random_problem(nb_channels=nb_channels, nb_sources=nb_sources,
                          seed=nb_channels * 10 + nb_sources)
    # norbert divides its x in place: hand it a copy
    expected = norbert.wiener(v.copy(), x.copy(), iterations, use_softmask, eps=1e-10)
    v_t, x_t = to_torch(v, x, dtype, device)
    y = wiener(v_t, x_t, iterations, softmask=use_softmask, eps=1e-10)
    assert y.dtype == COMPLEX[dtype] and y.device.type == device
    assert y.shape == (16, 7, nb_channels, nb_sources)
    assert max_rel_error(y.cpu().numpy(), expected) < RTOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("nb_sources", [1, 3])
@pytest.mark.parametrize("iterations", [0, 1, 2])
@pytest.mark.parametrize("use_softmask", [False, True])
def test_wiener_matches_norbert(dtype, nb_channels, nb_sources, iterations, use_softmask):
    check_against_norbert("cpu", dtype, nb_channels, nb_sources, iterations, use_softmask)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_wiener_on_cuda_matches_norbert(dtype, nb_channels):
    check_against_norbert("cuda", dtype, nb_channels, nb_sources=2, iterations=2,
                          use_softmask=False)


@pytest.mark.parametrize("use_softmask", [False, True])
def test_wiener_mono_spectrograms_match_norbert(use_softmask):
    """A one-channel spectrogram is shared by all mixture channels, as in norbert."""
    v, x = random_problem(nb_channels=2, nb_sources=2, seed=3)
    v = v[:, :, :1]
    expected = norbert.wiener(v.copy(), x.copy(), 1, use_softmask, eps=1e-10)
    y = wiener(*to_torch(v, x, torch.float64), 1, softmask=use_softmask, eps=1e-10)
    assert max_rel_error(y.numpy(), expected) < 1e-10


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("iterations", [1, 3])
def test_residual_wiener_matches_norbert_em(nb_channels, iterations):
    """Residual source + scaling + EM equals norbert's EM run on the same initial estimates."""
    v, x = random_problem(nb_channels=nb_channels, nb_sources=2, seed=7)
    y0 = v * np.exp(1j * np.angle(x))[..., None]
    y0 = np.concatenate([y0, x[..., None] - y0.sum(-1, keepdims=True)], axis=-1)
    max_abs = max(1.0, np.abs(x).max() / 10.0)
    expected = norbert.expectation_maximization(y0 / max_abs, x / max_abs, iterations,
                                                eps=1e-10)[0] * max_abs
    y = wiener(*to_torch(v, x, torch.float64), iterations, residual=True, eps=1e-10)
    assert y.shape == (16, 7, nb_channels, 3)
    assert max_rel_error(y.numpy(), expected) < 1e-10


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_em_model_matches_norbert(nb_channels):
    """PSDs and spatial covariances of the last iteration equal norbert's."""
    v, x = random_problem(nb_channels=nb_channels, nb_sources=2, seed=11, scale=1.0)
    y0 = v * np.exp(1j * np.angle(x))[..., None]
    y_ref, v_ref, R_ref = norbert.expectation_maximization(y0.copy(), x.copy(), 2, eps=1e-10)
    y, v_t, R_t = expectation_maximization(torch.from_numpy(y0), torch.from_numpy(x), 2, eps=1e-10)
    np.testing.assert_allclose(v_t.numpy(), v_ref, rtol=1e-10)
    np.testing.assert_allclose(R_t.numpy(), R_ref, rtol=1e-10, atol=1e-14)
    assert max_rel_error(y.numpy(), y_ref) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nb_channels", [1, 2, 3])
@pytest.mark.parametrize("iterations", [0, 1, 2])
@pytest.mark.parametrize("use_softmask", [False, True])
def test_sources_with_residual_sum_to_mixture(dtype, nb_channels, iterations, use_softmask):
    v, x = random_problem(nb_channels=nb_channels, nb_sources=2, seed=5)
    v_t, x_t = to_torch(v, x, dtype)
    y = wiener(v_t, x_t, iterations, softmask=use_softmask, residual=True)
    # after the EM the sum is x - sqrt(eps) C_x^-1 x (see the EM identity test below)
    tol = {0: 1e-6 if dtype == torch.float32 else 1e-13, 1: 1e-4, 2: 1e-4}[iterations]
    error = torch.linalg.vector_norm(y.sum(-1) - x_t) / torch.linalg.vector_norm(x_t)
    assert error < tol


@pytest.mark.parametrize("nb_channels", [1, 2, 3])
def test_em_sum_identity(nb_channels):
    """sum_j v_j R_j C_x^-1 x = x - sqrt(eps) C_x^-1 x, with the returned model (closed form)."""
    eps = 1e-6
    v, x = random_problem(nb_channels=nb_channels, nb_sources=3, seed=2, scale=1.0)
    y0 = torch.from_numpy(v * np.exp(1j * np.angle(x))[..., None])
    x_t = torch.from_numpy(x)
    y, v_t, R = expectation_maximization(y0, x_t, 1, eps=eps)
    identity = torch.eye(nb_channels, dtype=R.dtype)
    Cxx = torch.einsum("tfj,fcdj->tfcd", v_t.to(R.dtype), R) + eps ** 0.5 * identity
    expected = x_t - eps ** 0.5 * torch.linalg.solve(Cxx, x_t)
    if nb_channels == 1:  # the scalar inverse adds eps, as norbert's: (C - sqrt(eps)) / (C + eps)
        expected = x_t - (eps ** 0.5 + eps) * x_t / (Cxx[..., 0] + eps)
    torch.testing.assert_close(y.sum(-1), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nb_channels", [1, 2])
@pytest.mark.parametrize("iterations", [0, 1, 3])
@pytest.mark.parametrize("use_softmask", [False, True])
def test_single_source_equal_to_mixture_is_unchanged(nb_channels, iterations, use_softmask):
    _, x = random_problem(nb_channels=nb_channels, seed=4, scale=5.0)
    x_t = torch.from_numpy(x)
    y = wiener(x_t.abs()[..., None], x_t, iterations, softmask=use_softmask)
    assert y.shape == x_t.shape + (1,)
    torch.testing.assert_close(y[..., 0], x_t, rtol=0, atol=1e-5 * float(x_t.abs().max()))


def test_batch_size_does_not_change_result():
    v, x = random_problem(nb_frames=23, nb_sources=2, seed=9)
    v_t, x_t = to_torch(v, x, torch.float64)
    whole = wiener(v_t, x_t, 2, residual=True, batch_size=None)
    blocks = wiener(v_t, x_t, 2, residual=True, batch_size=5)
    torch.testing.assert_close(blocks, whole, rtol=1e-12, atol=1e-12)


def test_inputs_are_not_modified():
    v, x = random_problem(seed=1)
    v_t, x_t = to_torch(v, x, torch.float64)
    v_copy, x_copy = v_t.clone(), x_t.clone()
    wiener(v_t, x_t, 2, residual=True)
    assert torch.equal(v_t, v_copy) and torch.equal(x_t, x_copy)


def test_initialisations_closed_form():
    v, x = random_problem(nb_sources=3, seed=6)
    v_t, x_t = to_torch(v, x, torch.float64)
    np.testing.assert_allclose(mixture_phase(v_t, x_t).numpy(), v * (x / np.abs(x))[..., None],
                               rtol=1e-12)
    np.testing.assert_allclose(softmask(v_t, x_t, eps=1e-3).numpy(),
                               x[..., None] * v / (1e-3 + v.sum(-1, keepdims=True)), rtol=1e-12)
    y = add_residual(mixture_phase(v_t, x_t), x_t)
    np.testing.assert_allclose(y[..., -1].numpy(), x - (v * (x / np.abs(x))[..., None]).sum(-1),
                               rtol=1e-12)


def test_silent_mixture_gives_silent_sources():
    x = torch.zeros(8, 5, 2, dtype=torch.complex128)
    v = torch.zeros(8, 5, 2, 2, dtype=torch.float64)
    y = wiener(v, x, 2, residual=True)
    assert torch.isfinite(torch.view_as_real(y)).all() and y.abs().max() == 0


@pytest.mark.parametrize("nb_channels", [1, 2, 3, 4])
def test_invert_matches_linalg(nb_channels):
    """eps (large here, so that it shows) is added to the scalar of one channel only, as norbert does."""
    rng = np.random.default_rng(nb_channels)
    shape = (6, nb_channels, nb_channels)
    A = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    M = torch.from_numpy(A @ A.conj().transpose(0, 2, 1) + np.eye(nb_channels))
    eps = 0.5
    expected = torch.linalg.inv(M) if nb_channels > 1 else torch.from_numpy(norbert._invert(M.numpy(), eps))
    torch.testing.assert_close(invert(M, eps=eps), expected, rtol=1e-10, atol=1e-12)


def test_local_gaussian_model_closed_form():
    _, x = random_problem(nb_channels=2, seed=8, scale=1.0)
    y = torch.from_numpy(x)[..., None]
    v, R = local_gaussian_model(y, eps=1e-10)
    np.testing.assert_allclose(v[..., 0].numpy(), (np.abs(x) ** 2).mean(-1), rtol=1e-12)
    outer = np.einsum("tfc,tfd->fcd", x, x.conj())
    np.testing.assert_allclose(R[..., 0].numpy(),
                               outer / (1e-10 + (np.abs(x) ** 2).mean(-1).sum(0))[:, None, None],
                               rtol=1e-12)


def test_bad_inputs_raise_clear_errors():
    v, x = random_problem(seed=0)
    v_t, x_t = to_torch(v, x, torch.float64)
    with pytest.raises(ValueError, match="complex"):
        wiener(v_t, x_t.real, 1)
    with pytest.raises(ValueError, match="does not match mix_stft"):
        wiener(v_t[:, :3], x_t, 1)
    with pytest.raises(ValueError, match=r"\(nb_frames, nb_bins, nb_channels, nb_sources\)"):
        wiener(v_t[..., 0], x_t, 1)
    with pytest.raises(ValueError, match="non-negative"):
        wiener(-v_t, x_t, 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        wiener(v_t * float("nan"), x_t, 1)
    with pytest.raises(ValueError, match="iterations"):
        wiener(v_t, x_t, -1)
    with pytest.raises(ValueError, match="eps"):
        wiener(v_t, x_t, 1, eps=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        wiener(v_t, x_t, 1, batch_size=0)
