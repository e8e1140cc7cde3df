"""melunmix.base.files: hold_lock between real processes: refused while held, free as soon as
the holder ends, however it ends (the kernel releases an flock with the process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from melunmix.base.files import FolderInUse, hold_lock, lock_holder

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fcntl.flock")


def start_holder(lock, ends: str) -> subprocess.Popen:
    """A process that takes the lock, says so, then ends as ``ends`` says."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys, time
        from melunmix.base.files import hold_lock
        with hold_lock({str(lock)!r}, {{"pid": os.getpid(), "host": "h1", "started": "t0", "profile": "p",
                                        "command": "melunmix reproduce --profile p"}}):
            print("held", flush=True)
            if {ends!r} == "returns":
                sys.stdin.readline()
            else:
                time.sleep(120)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("ends", ["returns", "SIGKILL"])
def test_lock_refused_while_held_and_free_once_the_holder_ends(tmp_path, ends):
    lock = tmp_path / "run" / "run.lock"
    holder = start_holder(lock, ends)
    assert lock_holder(lock) == {"pid": holder.pid, "host": "h1", "started": "t0", "profile": "p",
                                 "command": "melunmix reproduce --profile p"}
    with pytest.raises(FolderInUse) as err:
        with hold_lock(lock, {"pid": os.getpid()}):
            pass
    assert str(err.value) == (
        f"{lock.parent} is in use by another run (pid {holder.pid} on host h1, started t0, profile p: "
        f"melunmix reproduce --profile p); wait for it to finish or stop it. The lock is {lock}; it is "
        "released when that process ends, however it ends")
    assert err.value.holder["pid"] == holder.pid
    if ends == "returns":
        holder.communicate("\n", timeout=30)
        assert holder.returncode == 0
    else:
        holder.kill()  # no clean-up at all: the lock must not outlive the process
        holder.wait(timeout=30)
    assert lock_holder(lock) is None
    with hold_lock(lock, {"pid": os.getpid(), "host": socket.gethostname()}) as path:
        assert path == lock and lock_holder(lock) is not None  # held by this process now
    assert lock.read_text() == ""  # emptied on release


def test_lock_holder_of_a_folder_never_locked(tmp_path):
    assert lock_holder(tmp_path / "run.lock") is None


def test_a_waiting_lock_takes_its_turn_instead_of_refusing(tmp_path):
    """``wait=True`` (tuning workers preparing data in turn): the second holder blocks until
    the first releases, then holds the lock; without it, the second is refused."""
    import threading
    import time

    lock = tmp_path / ".prepare.lock"
    order, held = [], threading.Event()

    def first():
        with hold_lock(lock, {"pid": 1}, wait=True):
            held.set()
            time.sleep(0.3)
            order.append("first released")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(5)
    with pytest.raises(FolderInUse):
        with hold_lock(lock, {"pid": 2}):
            pass
    with hold_lock(lock, {"pid": 2}, wait=True):
        order.append("second holds")
        assert lock_holder(lock) == {"pid": 2}
    thread.join()
    assert order == ["first released", "second holds"]


# --------------------------------------------------------------------------- atomic writes
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from melunmix.base.files import atomic_path, read_json, write_json

    path = write_json(tmp_path / "out" / "a.json", {"x": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.suffix == ".json" and tmp.parent == path.parent  # writers see the extension
            tmp.write_text('{"x": 2')  # half written when the process fails
            raise RuntimeError("killed")
    assert read_json(path) == {"x": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_stale_temporaries_of_a_killed_writer_are_removed_and_others_kept(tmp_path):
    from melunmix.base.files import remove_stale_temporaries

    stale = [tmp_path / ".song [1].wav.abc123.tmp.wav", tmp_path / ".song [1].wav.x.tmp.wav"]
    kept = [tmp_path / "song [1].wav", tmp_path / ".other.wav.abc.tmp.wav", tmp_path / ".song [1].wav.y.tmp.json"]
    for p in stale + kept:
        p.write_bytes(b"")
    assert sorted(remove_stale_temporaries(tmp_path / "song [1].wav")) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


def test_sha256_and_unreadable_json_named(tmp_path):
    import hashlib

    from melunmix.base.files import read_json, sha256_file

    data = bytes(range(256)) * 5000  # more than one 1 MiB block
    (tmp_path / "b.bin").write_bytes(data)
    assert sha256_file(tmp_path / "b.bin") == hashlib.sha256(data).hexdigest()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON.*delete it and rerun"):
        read_json(tmp_path / "bad.json")
