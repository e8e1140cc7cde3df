"""Atomic file writes and folder locks: a killed run never leaves a half-written result behind.

Every artifact is written to a temporary name in the destination folder and renamed into
place (``os.replace`` is atomic on POSIX and Windows within one file system).

:func:`hold_lock` keeps a second process out of a folder a run is writing: an exclusive
``flock`` on a lock file, which the operating system releases when the holder ends in any
way (``kill -9`` included), so a killed run never leaves a stale lock. The holder writes
who it is into the file, for the refusal message. ``flock`` works across hosts on NFS
(Linux emulates it with POSIX record locks there). Without :mod:`fcntl` (Windows) no lock
is taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, Iterator, Mapping

try:
    import fcntl
except ImportError:  # Windows: no locks (see the module docstring)
    fcntl = None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so writers that infer the
    format from the extension (soundfile, matplotlib, torch) behave. On error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + (suffix if suffix is not None else path.suffix), dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates 0600 files; results are meant to be shared like any other file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: str | os.PathLike, suffix: str | None = None) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` left for ``path`` when its process
    was killed (``kill -9`` skips the clean-up); returns what was deleted.

    Call it only where one process writes ``path`` at a time (an output folder of one
    command, a run folder under its lock): another writer's temporary file would go too.
    """
    path = Path(path)
    ending = ".tmp" + (suffix if suffix is not None else path.suffix)
    removed = []
    for stale in path.parent.glob(f".{glob_escape(path.name)}.*{ending}"):
        try:
            stale.unlink()
            removed.append(stale)
        except FileNotFoundError:
            pass
    return removed


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (NaN written as null-free JSON floats)."""
    return write_text(path, json.dumps(data, indent=indent, sort_keys=False, default=_to_builtin) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read JSON, naming the file in the error when it is unreadable."""
    path = Path(path)
    try:
        with open(path) as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it and rerun the step that makes it") from err


class FolderInUse(RuntimeError):
    """Another live process holds the lock; the message names it and the lock file."""

    def __init__(self, lock_path: Path, holder: Mapping | None):
        self.lock_path = Path(lock_path)
        self.holder = dict(holder or {})
        super().__init__(
            f"{self.lock_path.parent} is in use by another run ({describe_holder(self.holder)}); wait "
            f"for it to finish or stop it. The lock is {self.lock_path}; it is released when that "
            "process ends, however it ends"
        )


def describe_holder(holder: Mapping) -> str:
    """``pid 12 on host h, started <time>, profile p: <command>`` from a lock's details."""
    if not holder:
        return "its details are not written yet"
    parts = [f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"started {holder['started']}")
    if holder.get("profile"):
        parts.append(f"profile {holder['profile']}")
    text = ", ".join(parts)
    return f"{text}: {holder['command']}" if holder.get("command") else text


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike, details: Mapping, wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` for the duration of the block: the project's one
    lock (``fcntl.flock``, released by the kernel when the process dies). Without ``fcntl``
    (Windows) the block runs unlocked.

    Parameters
    ----------
    path : path
        The lock file (created with its folder if needed; never deleted, because deleting
        a lock file lets two processes lock two different files of one name).
    details : mapping
        Who holds the lock (pid, host, start time, ...), written into the file as JSON
        for the message another process gets; the file is emptied on release.
    wait : bool
        Wait until the lock is free (workers that take turns, e.g. preparing a tuning
        search's data) instead of refusing.

    Raises
    ------
    FolderInUse
        Another live process holds the lock (it names that process and ``path``); never
        with ``wait``.
    """
    path = Path(path)
    if fcntl is None:
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise FolderInUse(path, _read_holder(path)) from None
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(dict(details), default=_to_builtin) + "\n").encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def lock_holder(path: str | os.PathLike) -> dict | None:
    """Who holds the lock on ``path`` (its details, ``{}`` if not written yet), or None when free."""
    path = Path(path)
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path)
    finally:
        os.close(fd)
    return None


def _read_holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _to_builtin(obj: Any) -> Any:
    """JSON fallback for numpy scalars/arrays and paths."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
