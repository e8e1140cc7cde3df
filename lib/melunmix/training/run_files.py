"""A training run's files and the one way a folder is resumed: weights, half-training weights, checkpoint, history (`RunFiles`)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..base.config import flat_keys
from ..base.files import atomic_path, read_json, write_json, write_text
from ..models.networks import save_model
from ..base.names import CHECKPOINT_NAME, HISTORY_CSV_NAME, HISTORY_JSON_NAME, SETTINGS_JSON_NAME


#: Version of the checkpoint layout; a file of another version is refused, not guessed at.
CHECKPOINT_FORMAT = 1


#: What a checkpoint holds, every entry read on resume (``epoch`` is where it continues).
CHECKPOINT_KEYS = ("format", "signature", "epoch", "model", "optimizer", "scheduler", "early_stopping",
                   "rng", "history")


#: History column of the validation SDR (``train.valid_sdr_every``), when recorded.
VALID_SDR_COLUMN = "valid_sdr"


#: Columns of the history, one value per epoch.
HISTORY_COLUMNS = ("epoch", "train_loss", "valid_loss", "lr", "epoch_time")


def new_history(model_name: str, target: str, seed: int, signature: dict) -> dict[str, Any]:
    history: dict[str, Any] = {"model": model_name, "target": target, "seed": seed}
    history.update({column: [] for column in HISTORY_COLUMNS})
    history.update(best_epoch=None, best_valid_loss=None, finished=False, stop_reason=None, signature=signature)
    return history


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def history_for_json(history: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: a diverged epoch's loss is written as null."""
    out = dict(history)
    for column in ("train_loss", "valid_loss", "lr", VALID_SDR_COLUMN):
        if column in history:
            out[column] = [finite_or_none(v) for v in history[column]]
    return out


def _history_columns(history: dict[str, Any]) -> tuple[str, ...]:
    """The per-epoch columns of ``history``: :data:`HISTORY_COLUMNS`, plus ``valid_sdr`` when recorded."""
    return HISTORY_COLUMNS + ((VALID_SDR_COLUMN,) if VALID_SDR_COLUMN in history else ())


def _history_csv(history: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = _history_columns(history)
    writer.writerow([*columns, "best_epoch"])
    best, best_epoch = math.inf, None
    for row in zip(*(history[column] for column in columns)):
        epoch, valid = row[0], row[2]
        if valid is not None and math.isfinite(valid) and valid < best:
            best, best_epoch = valid, epoch
        writer.writerow([*("" if v is None else repr(v) if isinstance(v, float) else v for v in row),
                         "" if best_epoch is None else best_epoch])
    return buffer.getvalue()


def is_complete(history: dict[str, Any], epochs: int) -> bool:
    """Whether a run with this history has nothing left to do for ``epochs`` epochs.

    A run that stopped because it reached its epoch count continues when more epochs
    are asked for; early stopping and a diverged loss are final.
    """
    if not history.get("finished"):
        return False
    if history.get("stop_reason") == "epochs":
        return len(history["epoch"]) >= epochs
    return True


def weights_name(target: str) -> str:
    """File name of the best weights of ``target`` in a run folder (``vocals.pth``)."""
    return f"{target}.pth"


@dataclass(frozen=True)
class SavedRun:
    """What an earlier call of :func:`train` left in a run folder (:meth:`RunFiles.read`).

    Attributes
    ----------
    history : dict
        The run's history (as ``history.json``).
    state : dict or None
        The checkpoint (:data:`CHECKPOINT_KEYS`) to continue from; None when only a
        finished run's history and weights remain (its checkpoint deleted to save space).
    """

    history: dict
    state: dict | None


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run: every name in the run folder is decided here.

    Attributes
    ----------
    out_dir : Path
        The run folder.
    target : str
        The source the run estimates (names the weights files).
    """

    out_dir: Path
    target: str

    @property
    def weights(self) -> Path:
        return self.out_dir / weights_name(self.target)

    @property
    def half_weights(self) -> Path:
        return self.out_dir / half_weights_name(self.target)

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    @property
    def history_json(self) -> Path:
        return self.out_dir / HISTORY_JSON_NAME

    @property
    def history_csv(self) -> Path:
        return self.out_dir / HISTORY_CSV_NAME

    @property
    def settings_json(self) -> Path:
        return self.out_dir / SETTINGS_JSON_NAME

    def paths(self) -> dict[str, Path]:
        """The files by :class:`TrainResult` field name."""
        names = ("weights", "checkpoint", "history_json", "history_csv", "settings_json", "half_weights")
        return {name: getattr(self, name) for name in names}

    def read(self, signature: dict, device: torch.device) -> SavedRun | None:
        """What an earlier call left here, checked against this run's ``signature``.

        The checkpoint when there is one; else, when the checkpoint of a run was deleted
        to save space, its history (if its weights are there too): it says whether the
        run is complete. None for a new run.

        Raises
        ------
        ValueError
            The checkpoint (or history) belongs to another run, or is not a readable
            checkpoint of this format; the message names the file and says to delete
            ``out_dir`` or choose another.
        """
        state = _load_checkpoint(self.checkpoint, signature, self.out_dir, device)
        if state is not None:
            return SavedRun(state["history"], state)
        if self.history_json.exists() and self.weights.exists():
            history = read_json(self.history_json)
            check_run_signature(history.get("signature", {}), signature, self.history_json, self.out_dir)
            return SavedRun(history, None)
        return None

    def write_settings(self, record: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.settings_json, record)

    def write_history(self, history: dict[str, Any]) -> None:
        """Write ``history.json`` and ``history.csv``; files that already say the same are left alone."""
        texts = {
            self.history_json: json.dumps(history_for_json(history), indent=2) + "\n",
            self.history_csv: _history_csv(history),
        }
        for path, text in texts.items():
            if not path.exists() or path.read_text() != text:
                write_text(path, text)

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def save_weights(self, model: torch.nn.Module, epoch: int, history: dict[str, Any]) -> None:

        save_model(model, self.weights, target=self.target, epoch=epoch, history=history_for_json(history))

    def keep_half_weights(self) -> None:
        """The best weights so far become the half-training weights."""
        with atomic_path(self.half_weights) as tmp:
            shutil.copyfile(self.weights, tmp)


def _load_checkpoint(path: Path, signature: dict, out_dir: Path, device: torch.device) -> dict | None:
    if not path.exists():
        return None
    again = f"Delete the folder {out_dir} to train from scratch, or choose another output folder (--results-dir)."
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many kinds
        raise ValueError(
            f"{path} is not a readable training checkpoint ({type(err).__name__}: {err}). {again}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "signature" not in state:
        raise ValueError(f"{path} is not a melunmix training checkpoint (format {CHECKPOINT_FORMAT}). {again}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise ValueError(f"{path} is an incomplete training checkpoint (no {', '.join(missing)}). {again}")
    check_run_signature(state["signature"], signature, path, out_dir)
    if state["epoch"] != len(state["history"]["epoch"]):
        raise ValueError(f"{path} says epoch {state['epoch']} but its history has "
                         f"{len(state['history']['epoch'])} epochs. {again}")
    return state


def _normalise(values: dict) -> dict:
    """Round-trip through JSON so tuples/lists and numpy scalars compare as equal."""
    return json.loads(json.dumps(values, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def check_run_signature(found: dict, expected: dict, path: Path, out_dir: Path, what: str = "training run") -> None:
    """Raise when ``found`` (read from ``path``) differs from ``expected``, listing what differs.

    The message names the file and tells the user to delete ``out_dir`` or choose another.
    """
    found, expected = flat_keys(_normalise(found)), flat_keys(_normalise(expected))
    differences = [
        f"{key}: {found.get(key, '(missing)')!r} there, {expected.get(key, '(missing)')!r} here"
        for key in sorted(set(found) | set(expected))
        if found.get(key, "(missing)") != expected.get(key, "(missing)")
    ]
    if differences:
        raise ValueError(
            f"{path} belongs to another {what} ({'; '.join(differences)}). "
            f"Delete the folder {out_dir} to start over, or choose another output folder (--results-dir)."
        )


def half_epoch(epochs: int) -> int:
    """The epoch whose best-so-far weights stand for "half training": ``epochs // 2`` (0: none)."""
    return int(epochs) // 2


def half_weights_name(target: str) -> str:
    """File name of the half-training weights of ``target`` in a run folder (``vocals_half.pth``)."""
    return f"{target}_half.pth"
