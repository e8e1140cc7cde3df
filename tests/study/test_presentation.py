"""What the notebooks call instead of carrying logic: their display set-up (in a real kernel),
the scaler statistics figure, the loss table, a saved figure shown again."""

import struct

import nbformat
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from melunmix.analysis import audio_figures, figure_style
from melunmix.base.config import load_profile, run_paths
from melunmix.study import pipeline, presentation, run_setup, training_steps


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def run_cells(folder, name, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "melunmix", "display_name": "melunmix", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = folder / name
    nbformat.write(nb, path)
    pipeline.run_notebook(path, path, progress=False)
    return nbformat.read(path, as_version=4)


def stderr_of(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.outputs if o.get("name") == "stderr")


def test_set_up_in_a_kernel_small_inline_figures_no_machine_paths(tmp_path):
    import base64

    nb = run_cells(tmp_path, "set_up.ipynb",
                   "%matplotlib inline\nfrom melunmix.analysis import figure_style\nfrom melunmix.study import presentation\npresentation.notebook_display(inline_dpi=30)",
                   "import librosa.util.files  # pooch imports tqdm.auto",
                   "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\nax.plot([0, 1])\n"
                   "_ = figure_style.save_figure(fig, 'saved.png')",
                   "import pandas as pd\nprint(pd.get_option('display.width'), pd.get_option('display.max_columns'))")
    assert stderr_of(nb) == ""  # tqdm's "IProgress not found" (with the venv's path) is not printed
    shown = [o for o in nb.cells[2].outputs if "image/png" in o.get("data", {})]
    assert len(shown) == 1 and shown[0]["data"]["text/plain"] == "<Figure size 400x300 with 1 Axes>"
    width, height = png_size(base64.b64decode(shown[0]["data"]["image/png"]))
    assert 60 < width <= 4 * 30 and 45 < height <= 3 * 30  # 30 dpi, cropped to the drawing
    assert Image.open(tmp_path / "saved.png").size == (4 * figure_style.DEFAULT_DPI, 3 * figure_style.DEFAULT_DPI)
    assert nb.cells[3].outputs[0]["text"] == "160 20\n"

    # without melunmix imported first, the same import prints the warning (no ipywidgets here)
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        control = run_cells(tmp_path, "control.ipynb", "import librosa.util.files")
        assert "IProgress not found" in stderr_of(control)


def test_scaler_statistics_figure_draws_both_statistics_per_bin(tmp_path):
    rate, n_fft = 8000.0, 256
    mean = np.linspace(1.0, 0.01, n_fft // 2 + 1)
    std = 2 * mean
    fig = audio_figures.scaler_statistics_figure(mean, std, rate, n_fft, 3000.0, path=tmp_path / "f" / "stats.png")
    ax = fig.axes[0]
    curves = {line.get_label(): line for line in ax.get_lines()}
    expected_freqs = np.arange(n_fft // 2 + 1) * rate / n_fft
    for name, values in (("mean", mean), ("std", std)):  # each curve its own statistic, per bin
        np.testing.assert_array_equal(curves[name].get_xdata(), expected_freqs)
        np.testing.assert_array_equal(curves[name].get_ydata(), values)
    assert expected_freqs[-1] == rate / 2 and ax.get_yscale() == "log"
    assert list(curves["bandwidth fed to the network"].get_xdata()) == [3000.0, 3000.0]
    assert Image.open(tmp_path / "f" / "stats.png").size == (8 * figure_style.DEFAULT_DPI, 3 * figure_style.DEFAULT_DPI)
    with pytest.raises(ValueError, match=r"two non-empty vectors of one length, got shapes \(129,\) and \(3,\)"):
        audio_figures.scaler_statistics_figure(mean, std[:3], rate, n_fft, 3000.0)


def test_loss_table_writes_the_final_and_best_losses(tmp_path):
    settings = load_profile("smoke")
    run = run_setup.Run(settings, run_paths(settings, tmp_path), tmp_path / "data")
    histories = {
        "openunmix": pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [3.0, 2.0, 1.5], "valid_loss": [2.5, 1.9, 2.2]}),
        "melunmix": pd.DataFrame({"epoch": [1, 2], "train_loss": [2.0, 1.0], "valid_loss": [1.8, 1.2]}),
    }
    losses = training_steps.loss_table(run, histories)
    saved = pd.read_csv(tmp_path / "smoke" / "tables" / "losses.csv", index_col=0)
    pd.testing.assert_frame_equal(saved, losses, check_dtype=False)
    assert saved.loc["openunmix", "best valid loss"] == 1.9 and saved.loc["openunmix", "best epoch"] == 2
    assert saved.loc["openunmix", "final valid loss"] == 2.2 and saved.loc["melunmix", "final train loss"] == 1.0
    assert not list((tmp_path / "smoke" / "tables").glob(".*"))  # written atomically, nothing left


def test_saved_figure_shows_the_png_at_its_own_size(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 2))
    ax.imshow(np.arange(12.0).reshape(3, 4))
    path = figure_style.save_figure(fig, tmp_path / "drawn.png")
    shown = presentation.saved_figure(path)
    assert tuple(shown.get_size_inches()) == (5.0, 2.0)
    np.testing.assert_array_equal(shown.axes[0].images[0].get_array(), np.asarray(Image.open(path).convert("RGBA")))
    with pytest.raises(FileNotFoundError, match="missing.png does not exist; run the notebook that draws it first"):
        presentation.saved_figure(tmp_path / "missing.png")


def test_inline_resolution_comes_from_the_environment(monkeypatch):
    """Interactive sessions keep matplotlib's resolution; the refresh's kernels get the low one."""
    from matplotlib_inline.config import InlineBackend

    from melunmix.study import presentation

    backend = InlineBackend.instance()
    monkeypatch.setattr(backend, "print_figure_kwargs", {"bbox_inches": "tight"})
    monkeypatch.delenv(presentation.INLINE_DPI_ENV, raising=False)
    presentation.notebook_display()
    assert "dpi" not in backend.print_figure_kwargs
    monkeypatch.setenv(presentation.INLINE_DPI_ENV, str(presentation.COMMITTED_INLINE_DPI))
    presentation.notebook_display()
    assert backend.print_figure_kwargs == {"bbox_inches": "tight", "dpi": presentation.COMMITTED_INLINE_DPI}
    monkeypatch.setenv(presentation.INLINE_DPI_ENV, "high")
    with pytest.raises(ValueError, match="MELUNMIX_INLINE_DPI='high' is not a whole number"):
        presentation.notebook_display()
