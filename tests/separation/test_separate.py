"""Separation pipeline: block-wise processing equals whole-signal processing, lengths,
rates, channels, the residual, Wiener quality on a known mixture, and file handling."""

import numpy as np
import pytest
import soundfile as sf
import torch

from melunmix.dsp.features import ISTFT, STFT
from melunmix.models.networks import OpenUnmix, save_model
from melunmix.separation.separate import Separator, separate
from melunmix.separation.separate_files import read_audio, separate_files
from melunmix.dsp.wiener import wiener

N_FFT, N_HOP = 256, 64


# Tiny tensors: one intra-op thread is faster than two fighting over shared cores.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def model():
    """A tiny randomly initialised Open-Unmix (real layers, untrained)."""
    torch.manual_seed(0)
    net = OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=2, hidden_size=16, nb_layers=2,
                    sample_rate=8000.0, n_fft=N_FFT, n_hop=N_HOP)
    # the initial output affine (scale 1, mean 1) gives a mask of about 1 everywhere;
    # random values make the untrained model's vocals differ from the mixture
    with torch.no_grad():
        net.output_scale.uniform_(0.5, 2.0)
        net.output_mean.uniform_(-0.5, 1.0)
    return net.eval()


@pytest.fixture(scope="module")
def mono_model():
    torch.manual_seed(1)
    return OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=1, hidden_size=16, nb_layers=1,
                     sample_rate=8000.0, n_fft=N_FFT, n_hop=N_HOP).eval()


def noise(shape, seed=0):
    samples = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return torch.from_numpy(samples * 0.1)


def whole_signal_reference(net, audio, niter, wiener_win_len):
    """The definition: whole-signal STFT and model, Wiener on consecutive blocks, whole ISTFT."""
    stft, istft = STFT(N_FFT, N_HOP), ISTFT(N_FFT, N_HOP)
    with torch.inference_mode():
        mix = stft(audio.double())
        target = net(stft(audio).abs()).double()
    out = []
    for mix_s, target_s in zip(mix, target):
        spec, x = target_s.permute(2, 1, 0)[..., None], mix_s.permute(2, 1, 0)
        blocks = [wiener(spec[t:t + wiener_win_len], x[t:t + wiener_win_len], niter, residual=True)
                  for t in range(0, x.shape[0], wiener_win_len)]
        out.append(istft(torch.cat(blocks).permute(3, 2, 1, 0), length=audio.shape[-1]))
    return torch.stack(out).float()


@pytest.mark.parametrize("niter", [0, 1])
@pytest.mark.parametrize("wiener_win_len, model_win_len",
                         [(7, None), (10, 30), (3, 12), (1000, None)])
def test_blockwise_separation_equals_whole_signal_definition(model, niter, wiener_win_len,
                                                             model_win_len):
    """Streamed STFT / ISTFT and model chunks (with full context) change nothing."""
    audio = noise((2, 2, N_HOP * 61 + 37))
    separator = Separator({"vocals": model}, niter=niter, wiener_win_len=wiener_win_len,
                          model_win_len=model_win_len, model_context=10**6)
    with torch.inference_mode():
        estimates = separator(audio)
    assert separator.target_names == ["vocals", "accompaniment"]
    assert estimates.shape == (2, 2, 2, audio.shape[-1]) and estimates.dtype == torch.float32
    expected = whole_signal_reference(model, audio, niter, wiener_win_len)
    torch.testing.assert_close(estimates, expected, rtol=1e-5, atol=1e-6)


def test_blockwise_wiener_equals_single_block_without_em(model):
    """niter=0 filters each bin on its own, so the block length cannot matter."""
    audio = noise((1, 2, N_HOP * 50 + 5), seed=3)
    with torch.inference_mode():
        single = Separator({"vocals": model}, niter=0, wiener_win_len=10**6)(audio)
        blocks = Separator({"vocals": model}, niter=0, wiener_win_len=4)(audio)
    torch.testing.assert_close(blocks, single, rtol=1e-5, atol=1e-7)
    assert single.abs().max() > 0


def test_model_chunks_with_context_approach_whole_signal(model):
    audio = noise((1, 2, N_HOP * 80), seed=4)
    with torch.inference_mode():
        whole = Separator({"vocals": model}, niter=0, model_win_len=None)(audio)
        errors = [float((Separator({"vocals": model}, niter=0, wiener_win_len=10, model_win_len=20,
                                   model_context=context)(audio) - whole).abs().max())
                  for context in (0, 40)]
    assert errors[0] > 1e-5  # without context the chunk edges do change the LSTM's output
    assert errors[1] < 1e-5 * float(whole.abs().max())


@pytest.mark.parametrize("niter", [0, 1])
def test_vocals_plus_residual_is_the_mixture(model, niter):
    audio = noise((1, 2, 4001), seed=5)
    with torch.inference_mode():
        separator = Separator({"vocals": model}, niter=niter, wiener_win_len=16)
        estimates = separator.to_dict(separator(audio))
    assert set(estimates) == {"vocals", "accompaniment"}
    # exact up to the STFT round trip without EM; up to sqrt(eps) / power with it
    tol = 1e-5 if niter == 0 else 1e-3
    error = (estimates["vocals"] + estimates["accompaniment"] - audio).abs().max()
    assert error < tol * audio.abs().max()
    assert (estimates["vocals"] - audio).abs().max() > 0.01  # the model did separate something


@pytest.mark.parametrize("rate, nb_samples", [(8000, 4001), (22050, 11025), (48000, 24011),
                                              (44100, 3)])
def test_separate_any_rate_keeps_length_and_sums_to_mixture(model, rate, nb_samples):
    t = np.arange(nb_samples) / rate
    # content well below every Nyquist involved, so resampling round trips it
    audio = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t + 1)])
    estimates = separate(audio, rate, {"vocals": model}, niter=0, device="cpu")
    assert set(estimates) == {"vocals", "accompaniment"}
    for est in estimates.values():
        assert est.shape == audio.shape and est.dtype == np.float32
    total = estimates["vocals"] + estimates["accompaniment"]
    edge = int(0.01 * rate)  # resampling filters ring at the ends
    if nb_samples > 4 * edge:
        np.testing.assert_allclose(total[:, edge:-edge], audio[:, edge:-edge], atol=1e-4)


@pytest.mark.parametrize("rate", [22050, 48000])
def test_separate_resamples_to_a_44100_model(rate):
    torch.manual_seed(2)
    net = OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=2, hidden_size=8, nb_layers=1,
                    sample_rate=44100.0, n_fft=N_FFT, n_hop=N_HOP).eval()
    nb_samples = rate // 4 + 1  # odd, and not a whole number of samples at 44.1 kHz
    t = np.arange(nb_samples) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.3 * np.cos(2 * np.pi * 5000 * t)])
    estimates = separate(audio.astype(np.float32), rate, {"vocals": net}, niter=1, device="cpu")
    assert {name: est.shape for name, est in estimates.items()} == {
        "vocals": (2, nb_samples), "accompaniment": (2, nb_samples)}
    edge = rate // 100
    total = estimates["vocals"] + estimates["accompaniment"]
    np.testing.assert_allclose(total[:, edge:-edge], audio[:, edge:-edge], atol=1e-4)


def test_separate_accepts_torch_and_model_files(model, tmp_path):
    path = save_model(model, tmp_path / "vocals.pt", target="vocals")
    audio = noise((2, 3001), seed=6)
    from_file = separate(audio, 8000, {"vocals": path}, niter=1, device="cpu")
    from_model = separate(audio.numpy(), 8000, {"vocals": model}, niter=1, device="cpu")
    for name in ("vocals", "accompaniment"):
        np.testing.assert_allclose(from_file[name], from_model[name], rtol=1e-5, atol=1e-7)


def test_mono_in_mono_out(model):
    audio = noise((1, 3001), seed=7).numpy()
    estimates = separate(audio, 8000, {"vocals": model}, niter=1, device="cpu")
    stereo = separate(np.repeat(audio, 2, axis=0), 8000, {"vocals": model}, niter=1, device="cpu")
    for name in ("vocals", "accompaniment"):
        assert estimates[name].shape == (1, 3001)
        np.testing.assert_allclose(estimates[name][0], stereo[name].mean(axis=0),
                                   rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(estimates["vocals"] + estimates["accompaniment"], audio, atol=1e-4)


def test_stereo_with_mono_model_separates_each_channel(mono_model):
    audio = noise((2, 3001), seed=8).numpy()
    both = separate(audio, 8000, {"vocals": mono_model}, niter=1, device="cpu")
    left = separate(audio[:1], 8000, {"vocals": mono_model}, niter=1, device="cpu")
    assert both["vocals"].shape == (2, 3001)
    np.testing.assert_allclose(both["vocals"][:1], left["vocals"], rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_separate_on_cuda_matches_cpu(model):
    audio = noise((2, 3001), seed=9).numpy()
    cpu = separate(audio, 8000, {"vocals": model}, niter=1, device="cpu")
    gpu = separate(audio, 8000, {"vocals": model}, niter=1, device="cuda")
    np.testing.assert_allclose(gpu["vocals"], cpu["vocals"], atol=1e-4)


def sdr(reference, estimate):
    return 10 * np.log10(np.sum(reference ** 2) / np.sum((reference - estimate) ** 2))


def test_wiener_quality_on_known_mixture():
    """With the true source magnitudes, the filter recovers a stereo mixture's sources,
    and the EM gains by using the sources' different panning."""
    rate, nb_samples = 8000, 16000
    t = np.arange(nb_samples) / rate
    phase = 2 * np.pi * np.cumsum(220 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8)) * (np.sin(2 * np.pi * t) > 0)
    vocals = np.stack([voice, voice]) * 0.3  # centred
    hiss = np.random.default_rng(0).standard_normal(nb_samples) * 0.1
    accompaniment = np.stack([0.9 * hiss, 0.3 * hiss]) + 0.2 * np.sin(2 * np.pi * 55 * t)  # left
    stft, istft = STFT(512, 128), ISTFT(512, 128)
    mix = stft(torch.from_numpy(vocals + accompaniment))
    magnitudes = torch.stack([stft(torch.from_numpy(vocals)).abs(),
                              stft(torch.from_numpy(accompaniment)).abs()], dim=-1)
    scores = {}
    for niter in (0, 1):
        y = wiener(magnitudes.permute(2, 1, 0, 3), mix.permute(2, 1, 0), niter)
        estimates = istft(y.permute(3, 2, 1, 0), length=nb_samples).numpy()
        scores[niter] = (sdr(vocals, estimates[0]), sdr(accompaniment, estimates[1]))
    assert sdr(vocals, vocals + accompaniment) < 2  # the mixture itself is a poor estimate
    assert min(scores[0]) > 15
    assert min(scores[1]) > 22
    assert scores[1][0] > scores[0][0] + 2 and scores[1][1] > scores[0][1] + 2


def test_models_must_agree(model):
    other = OpenUnmix(nb_bins=N_FFT + 1, nb_channels=2, hidden_size=16, nb_layers=1,
                      sample_rate=8000.0, n_fft=2 * N_FFT, n_hop=N_HOP)
    with pytest.raises(ValueError, match="disagree on n_fft"):
        Separator({"vocals": model, "drums": other})
    with pytest.raises(ValueError, match="sample_rate=16000"):
        Separator({"vocals": model}, sample_rate=16000)
    with pytest.raises(ValueError, match="non-empty"):
        Separator({})
    with pytest.raises(ValueError, match="wiener_win_len"):
        Separator({"vocals": model}, wiener_win_len=0)


def test_modelled_accompaniment_gets_no_residual(model):
    separator = Separator({"vocals": model, "accompaniment": model})
    assert separator.target_names == ["vocals", "accompaniment"]
    assert Separator({"vocals": model}, residual=False).target_names == ["vocals"]


def test_bad_audio_raises_clear_errors(model):
    with pytest.raises(ValueError, match="audio.T"):
        separate(np.zeros((3001, 2), np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="NaN or infinite"):
        separate(np.full((2, 3001), np.nan, np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="empty"):
        separate(np.zeros((2, 0), np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="audio\\[None\\]"):
        separate(np.zeros(3001, np.float32), 8000, {"vocals": model})
    with pytest.raises(ValueError, match="rate"):
        separate(np.zeros((2, 3001), np.float32), 0, {"vocals": model})
    with pytest.raises(ValueError, match="3 channels"):
        separate(np.zeros((3, 3001), np.float32), 8000, {"vocals": model})
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        separate(np.zeros((2, 3001), np.float32), 8000, {"vocals": "missing.pt"})


@pytest.fixture()
def songs(tmp_path):
    """A good stereo WAV at 11025 Hz, a mono FLAC, an empty WAV, a non-audio file and a NaN WAV."""
    folder = tmp_path / "songs"
    folder.mkdir()
    good = folder / "good song.wav"
    t = np.arange(3001) / 11025
    # below 4 kHz, the Nyquist of the 8 kHz model the song is resampled to
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 2500 * t)],
                     axis=1)
    sf.write(good, tones, 11025, subtype="PCM_16")
    mono = folder / "mono.flac"
    sf.write(mono, noise((2001,), seed=11).numpy(), 8000)
    empty = folder / "empty.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), 8000)
    garbage = folder / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    nan = folder / "nan.wav"
    sf.write(nan, np.full((500, 2), np.nan, np.float32), 8000, subtype="FLOAT")
    return {"good": good, "mono": mono, "empty": empty, "garbage": garbage, "nan": nan,
            "missing": folder / "missing.wav"}


def test_separate_files_writes_wavs_and_reports_failures(model, songs, tmp_path, capsys):
    model_path = save_model(model, tmp_path / "models" / "vocals.pt", target="vocals")
    order = ["empty", "good", "garbage", "nan", "mono", "missing"]
    report = separate_files([songs[k] for k in order], [model_path], tmp_path / "out",
                            niter=1, progress=False, device="cpu")

    assert set(report["written"]) == {str(songs["good"]), str(songs["mono"])}
    for key, rate, shape in (("good", 11025, (3001, 2)), ("mono", 8000, (2001, 1))):
        files = report["written"][str(songs[key])]
        assert set(files) == {"vocals", "accompaniment"}
        mixture, _ = sf.read(songs[key], dtype="float32", always_2d=True)
        parts = []
        for target in ("vocals", "accompaniment"):
            path = tmp_path / "out" / songs[key].stem / f"{target}.wav"
            assert files[target] == str(path)
            info = sf.info(path)
            assert (info.samplerate, info.subtype) == (rate, "FLOAT")
            assert (info.frames, info.channels) == shape
            parts.append(sf.read(path, dtype="float32", always_2d=True)[0])
        interior = slice(100, -100)  # away from the resampling filter's edges
        np.testing.assert_allclose((parts[0] + parts[1])[interior], mixture[interior], atol=1e-3)

    failed = report["failed"]
    assert set(failed) == {str(songs[k]) for k in ("empty", "garbage", "nan", "missing")}
    assert "no audio samples" in failed[str(songs["empty"])]
    assert "cannot read audio" in failed[str(songs["garbage"])]
    assert "ffmpeg" in failed[str(songs["garbage"])]
    assert "NaN or infinite" in failed[str(songs["nan"])]
    assert "no such file" in failed[str(songs["missing"])]
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 4
    for key in ("empty", "garbage", "nan", "missing"):
        assert sum(str(songs[key]) in line for line in err_lines) == 1


def test_cli_separate_exit_status(model, songs, tmp_path):
    from melunmix.commands.cli import main

    model_path = save_model(model, tmp_path / "vocals.pt", target="vocals")
    out = tmp_path / "cli_out"
    ok = main(["separate", str(songs["good"]), "--model", str(model_path), "--out", str(out),
               "--niter", "0", "--no-progress"])
    assert ok == 0 and (out / "good song" / "vocals.wav").is_file()
    bad = main(["separate", str(songs["good"]), str(songs["garbage"]), "--model", str(model_path),
                "--out", str(out), "--no-progress"])
    assert bad == 1


def test_separate_files_needs_a_target_in_the_model_file(model, songs, tmp_path):
    path = save_model(model, tmp_path / "anonymous.pt")
    with pytest.raises(ValueError, match="does not name its target"):
        separate_files([songs["good"]], [path], tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        separate_files([songs["good"]], [tmp_path / "nope.pt"], tmp_path / "out", progress=False)


def test_read_audio_layout(songs):
    audio, rate = read_audio(songs["good"])
    assert audio.shape == (2, 3001) and audio.dtype == np.float32 and rate == 11025


def test_song_name_uses_the_track_folder_for_musdb_mixtures(tmp_path):
    from melunmix.separation.separate_files import song_name

    assert song_name(tmp_path / "My Song.flac") == "My Song"
    assert song_name(tmp_path / "train" / "Artist - Title" / "mixture.wav") == "Artist - Title"


def test_separate_files_names_the_song_of_every_failure(model, tmp_path):
    """A 6-channel song (the error comes from inside separation) and an unwritable output
    folder: each failure line names the file it is about."""
    model_path = save_model(model, tmp_path / "models" / "vocals.pt", target="vocals")
    six = tmp_path / "surround.wav"
    sf.write(six, noise((3001, 6), seed=3).numpy(), 8000, subtype="FLOAT")
    report = separate_files([six], [model_path], tmp_path / "out", progress=False, device="cpu")
    message = report["failed"][str(six)]
    assert message.startswith(f"{six}: ") and "6 channels" in message and "down-mix" in message

    good = tmp_path / "good.wav"
    sf.write(good, noise((3001, 2), seed=4).numpy(), 8000, subtype="FLOAT")
    blocked = tmp_path / "blocked"
    (blocked / "good").mkdir(parents=True)
    (blocked / "good" / "vocals.wav").mkdir()  # a folder where the estimate must go
    report = separate_files([good], [model_path], blocked, progress=False, device="cpu")
    message = report["failed"][str(good)]
    assert "cannot write" in message and str(blocked / "good" / "vocals.wav") in message


def test_partial_file_of_a_killed_run_is_removed_by_the_rerun(model, songs, tmp_path):
    """kill -9 inside an atomic write leaves a hidden temporary file; the next run deletes it."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    song_dir = tmp_path / "out" / songs["good"].stem
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from melunmix.base.files import atomic_path\n"
        f"with atomic_path({str(song_dir / 'vocals.wav')!r}) as tmp:\n"
        "    tmp.write_bytes(b'half a wav')\n"
        "    print(tmp, flush=True)\n"
        "    time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    partial = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert partial.exists() and partial.name.startswith(".vocals.wav.")  # what kill -9 leaves

    model_path = save_model(model, tmp_path / "models" / "vocals.pt", target="vocals")
    report = separate_files([songs["good"]], [model_path], tmp_path / "out", progress=False, device="cpu")
    assert not report["failed"]
    assert sorted(p.name for p in song_dir.iterdir()) == ["accompaniment.wav", "vocals.wav"]


def test_cli_separate_takes_folders_m4a_targets_and_output_formats(model, tmp_path, capsys):
    """What a umx user reaches for: --version, a folder of songs (an .m4a among them, decoded by
    ffmpeg), a model folder, --targets, --ext/--subtype, --device, one line per song."""
    import subprocess

    from melunmix import __version__
    from melunmix.commands.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"melunmix {__version__}"

    folder = tmp_path / "songs"
    folder.mkdir()
    sf.write(folder / "a.wav", noise((4000, 2), seed=3).numpy(), 8000)
    sf.write(tmp_path / "b.wav", noise((4000, 2), seed=4).numpy(), 8000)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "b.wav"), "-c:a", "aac",
                    str(folder / "b.m4a")], check=True)
    (folder / "notes.txt").write_text("not a song")
    models = tmp_path / "models"
    save_model(model, models / "vocals.pt", target="vocals")
    save_model(model, models / "drums.pth", target="drums")
    out = tmp_path / "out"
    status = main(["separate", str(folder), "--model", str(models), "--targets", "vocals", "--ext", "flac",
                   "--subtype", "PCM_16", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(folder / "a.wav")) and "b.m4a" in lines[1]
    for song in ("a", "b"):
        assert sorted(p.name for p in (out / song).iterdir()) == ["accompaniment.flac", "vocals.flac"]
        info = sf.info(out / song / "vocals.flac")
        assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_16", 8000)
    # m4a (AAC) decodes to about the same length; the WAV is exact
    assert sf.info(out / "a" / "vocals.flac").frames == 4000
    assert abs(sf.info(out / "b" / "vocals.flac").frames - 4000) < 2048
    with pytest.raises(ValueError, match=r"no model for target\(s\) \['bass'\]"):
        separate_files([folder / "a.wav"], [models], tmp_path / "o2", targets=["bass"], progress=False)
    with pytest.raises(ValueError, match="not one of"):
        separate_files([folder / "a.wav"], [models], tmp_path / "o2", ext="flac", subtype="FLOAT", progress=False)


def test_song_folders_a_musdb_hq_track_is_its_mixture_and_a_folder_without_audio_fails_alone(model, tmp_path,
                                                                                            capsys):
    track = tmp_path / "HQ Song"
    track.mkdir()
    for name in ("mixture", "vocals", "drums"):
        sf.write(track / f"{name}.wav", noise((3000, 2), seed=len(name)).numpy(), 8000)
    empty = tmp_path / "nothing here"
    empty.mkdir()
    model_path = save_model(model, tmp_path / "vocals.pt", target="vocals")
    report = separate_files([track, empty], [model_path], tmp_path / "out", progress=False, device="cpu")
    assert list(report["written"]) == [str(track / "mixture.wav")]  # the mixture only, not the stems
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["HQ Song"]
    assert "a folder without audio files" in report["failed"][str(empty)]


def test_pcm_output_is_clipped_to_full_scale_with_a_warning(model, tmp_path, capsys):
    loud = tmp_path / "loud.wav"
    sf.write(loud, 10.0 * noise((4000, 2), seed=9).numpy(), 8000, subtype="FLOAT")  # peaks far above 1
    model_path = save_model(model, tmp_path / "vocals.pt", target="vocals")
    separate_files([loud], [model_path], tmp_path / "out", progress=False, device="cpu", subtype="PCM_16")
    assert "clipped to full scale for PCM_16" in capsys.readouterr().err
    audio, _ = sf.read(tmp_path / "out" / "loud" / "accompaniment.wav", always_2d=True)
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.99
