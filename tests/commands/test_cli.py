"""`melunmix` command lines: errors of the operating system read as one line with the file
and what to do, and the profiles --help lists are the package's."""

from __future__ import annotations

import errno

import pytest

from melunmix.commands import cli
from melunmix.base.config import PROFILES_DIR


@pytest.mark.parametrize("code, reason, advice", [
    (errno.EROFS, "Read-only file system", "Read-only file system; the file system is read-only: choose an output "
                                           "folder on a writable disk (--out, --results-dir"),
    (errno.ENOSPC, "No space left on device", "No space left on device; the disk is full: free space"),
    (errno.EACCES, "Permission denied", "Permission denied; no permission: choose a folder you can write"),
])
def test_os_errors_a_user_can_fix_name_the_file_and_the_fix(code, reason, advice):
    line = cli._os_error_line(OSError(code, reason, "/results/demo/REPORT.md"))
    assert line.startswith("/results/demo/REPORT.md: ") and advice in line
    assert "Errno" not in line and "\n" not in line


def test_other_os_errors_keep_their_text_and_file():
    line = cli._os_error_line(OSError(errno.EIO, "Input/output error", "/data/song.wav"))
    assert "Input/output error" in line and "/data/song.wav" in line


def test_help_lists_every_shipped_profile(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for profile in sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")):
        assert profile in shown
    assert "study" in shown
