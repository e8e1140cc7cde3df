"""melunmix: Open-Unmix and a mel-spectrogram branch for vocal separation."""

__version__ = "0.1.0"
