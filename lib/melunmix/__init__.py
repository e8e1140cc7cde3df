"""melunmix: Open-Unmix and a mel-spectrogram branch for vocal separation."""

import os as _os

# OpenMP threads that busy-wait at every barrier make torch's CPU kernels 10-50x slower
# as soon as another process shares the cores (measured here: an LSTM training step went
# from 1 s to 20-50 s on 2 cores with a second busy process). Passive waiting costs
# nothing when the machine is quiet. Only a default: set OMP_WAIT_POLICY to override. It
# must be set before torch loads its OpenMP runtime, so it lives here.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _quiet_tqdm_auto() -> None:
    """Import ``tqdm.auto`` once without its "IProgress not found" warning in a Jupyter kernel.

    librosa (through pooch) and optuna import ``tqdm.auto``; in a kernel without
    ipywidgets it warns, with the absolute path of the virtual environment, that it falls
    back to text progress bars, which is what melunmix shows anyway (it uses plain
    ``tqdm``). Imported here first with that warning ignored, the module is cached and
    the later imports say nothing. Outside a kernel nothing is done.
    """
    import sys
    import warnings

    if "ipykernel" not in sys.modules or "tqdm.auto" in sys.modules:
        return
    try:
        from tqdm import TqdmWarning
    except ImportError:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
        import tqdm.auto  # noqa: F401


_quiet_tqdm_auto()

__version__ = "0.1.0"
