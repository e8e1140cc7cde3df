"""What produced a file: the versions of the libraries and the git commit of the code.

One home for the records that model files (:func:`melunmix.models.networks.save_model`), a
training run's ``settings.json`` (:mod:`melunmix.training.train`), the generated dataset's card
(:mod:`melunmix.synth`) and a study's ``manifest.json`` (:mod:`melunmix.study.pipeline`) carry.

Example
-------
>>> from melunmix.base import provenance
>>> sorted(provenance.package_versions(("numpy",)))
['numpy', 'python']
>>> provenance.git_commit()                            # doctest: +SKIP
'05d1df9c...'
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: The libraries whose versions decide what a model computes (model files, training runs).
CORE_PACKAGES = ("melunmix", "torch", "numpy")


def package_versions(names=CORE_PACKAGES, *, python: bool = True, missing: str | None = None) -> dict:
    """Versions of the packages ``names`` (and of Python), by name.

    The installed distribution's version is read without importing the package; one that
    runs without being installed (a source tree on ``sys.path``) reports the
    ``__version__`` of its imported module.

    Parameters
    ----------
    names : sequence of str
        Distribution names (``"torch"``, ``"pretty_midi"``...).
    python : bool
        Add ``"python"`` (``platform.python_version()``) first.
    missing : str or None
        What a package that is not installed gets (``None``, or a word such as ``"unknown"``).

    Returns
    -------
    dict of str to str or None
    """
    versions: dict[str, str | None] = {"python": platform.python_version()} if python else {}
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = getattr(sys.modules.get(name), "__version__", missing)
        versions[name] = None if version is None else str(version)
    return versions


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The commit of the code at ``path``, with ``-dirty`` when tracked files have changes.

    Parameters
    ----------
    path : path, optional
        A folder inside a git checkout; default the folder of this package, so the record
        names the code that ran.

    Returns
    -------
    str or None
        None outside a git checkout, without git, or (default ``path``) when the package is
        an installed copy that the enclosing repository does not track (e.g. a virtual
        environment inside another checkout): that repository's commit would not be the
        code's.
    """
    folder = Path(path) if path is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        if path is None:
            git("ls-files", "--error-unmatch", Path(__file__).name)
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


#: Environment variables that limit the vector instructions torch, oneDNN and MKL use.
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform.processor()``), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> dict:
    """What computed a run, beyond the code and the libraries: the numbers of a training
    run depend on it (the CPU's vector instructions, the thread count, the BLAS).

    Returns
    -------
    dict
        ``platform``, ``processor`` (architecture), ``cpu`` (model name), ``cpus`` (logical
        cores), ``torch_threads``, ``torch_cpu_capability`` (the vector instructions torch
        uses: ``AVX512``, ``AVX2``, ``DEFAULT``...), ``blas`` (torch's BLAS and LAPACK),
        ``cuda`` (the device's name, or None), and the instruction limits set in the
        environment (:data:`ISA_VARIABLES`), if any.
    """
    import torch

    build = dict(part.split("=", 1) for part in torch.__config__.show().replace(",", " ").split()
                 if "=" in part)
    record = {
        "platform": platform.platform(), "processor": platform.machine(), "cpu": cpu_model(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": build.get("BLAS_INFO"), "lapack": build.get("LAPACK_INFO"),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    limits = {name: os.environ[name] for name in ISA_VARIABLES if os.environ.get(name)}
    if limits:
        record["instruction_limits"] = limits
    return record
