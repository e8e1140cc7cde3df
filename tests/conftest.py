"""Shared test set-up."""

import os

# See melunmix/__init__.py: keep torch's OpenMP threads from spinning when cores are shared.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
