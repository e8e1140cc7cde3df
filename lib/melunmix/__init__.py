"""melunmix: Open-Unmix and a mel-spectrogram branch for vocal separation."""

import os as _os

# OpenMP threads that busy-wait at every barrier make torch's CPU kernels 10-50x slower
# as soon as another process shares the cores (measured here: an LSTM training step went
# from 1 s to 20-50 s on 2 cores with a second busy process). Passive waiting costs
# nothing when the machine is quiet. Only a default: set OMP_WAIT_POLICY to override. It
# must be set before torch loads its OpenMP runtime, so it lives here.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
