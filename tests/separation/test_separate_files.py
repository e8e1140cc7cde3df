"""melunmix.separation.separate_files: `melunmix separate` over files and folders, names, formats, failures and resumption."""

import numpy as np
import pytest
import soundfile as sf

from melunmix.models.networks import save_model
from melunmix.separation.separate_files import read_audio, separate_files

from separate_support import noise


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
