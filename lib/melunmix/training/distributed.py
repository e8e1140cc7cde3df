"""Training on several processes: ``torch.distributed`` as ``torchrun`` starts it.

:func:`melunmix.training.train.train` runs unchanged in one process; under ``torchrun`` (or any
launcher that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``) each process is one *rank* and the training is data parallel
(``DistributedDataParallel``):

- the global batch (``train.batch_size``) of every step is the one a single process
  would draw, cut into one contiguous share per rank
  (:class:`melunmix.datasets.torch_datasets.GlobalBatchSampler`), so no two ranks train on the same
  excerpt and the epoch's sequence of excerpts does not depend on the number of ranks;
- each rank's loss is weighted by its share of the global batch, so DDP's averaged
  gradient is the gradient of the global batch's mean loss;
- batch normalisation uses the statistics of the global batch (:class:`SyncedBatchNorm1d`,
  also on CPUs, where torch's ``SyncBatchNorm`` does not run), so a step computes what a
  single process computes with the same global batch, to float round-off;
- validation, checkpoints, weights and histories are the work of rank 0 alone; the
  others receive the validation loss and make the same decisions (learning-rate
  schedule, early stopping);
- the process group uses NCCL when the ranks train on CUDA devices (one per rank,
  ``cuda:<LOCAL_RANK>``) and gloo on CPUs.

What does not match a single process: LSTM dropout (``model.nb_layers > 1``) draws its
masks per rank, from a generator seeded with (seed, epoch, rank) at every epoch, so a run
is reproducible for a given number of ranks but its losses differ from a single
process's by the dropout noise.

Example
-------
>>> from melunmix.training import distributed
>>> ranks = distributed.init_from_environment()   # no-op without torchrun  # doctest: +SKIP
>>> ranks.rank, ranks.world_size                                            # doctest: +SKIP
(0, 1)
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..base.config import flat_keys
from ..base.devices import resolve_device

#: How long a rank waits in a collective (e.g. while rank 0 validates) before giving up.
TIMEOUT = datetime.timedelta(minutes=60)
#: Environment variables a launcher sets for every rank (torchrun, Slurm via srun + torchrun).
LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes.

    Attributes
    ----------
    rank : int
        0 .. world_size - 1; rank 0 validates and writes every file.
    world_size : int
        Number of processes training together (1: no torch.distributed).
    local_rank : int
        Index of this process on its machine: its CUDA device.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates and writes."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def current() -> Ranks:
    """The ranks of the initialised process group; a single process when there is none."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Ranks(dist.get_rank(), dist.get_world_size(), local)


def environment_rank(environ: dict | None = None) -> int:
    """This process's rank as its launcher set it (``RANK``; 0 without a launcher)."""
    return int((os.environ if environ is None else environ).get("RANK", "0"))


def backend_for(device: str | torch.device = "auto") -> str:
    """``"nccl"`` when the ranks will train on CUDA devices, ``"gloo"`` otherwise.

    Parameters
    ----------
    device : str or torch.device
        The profile's ``train.device`` (:func:`melunmix.base.devices.resolve_device`: ``"auto"``
        is CUDA when present; CUDA asked for without CUDA is refused).
    """

    return "nccl" if resolve_device(device).type == "cuda" else "gloo"


def init_from_environment(device: str | torch.device = "auto", environ: dict | None = None) -> Ranks:
    """Join the process group a launcher described in the environment; no-op otherwise.

    Parameters
    ----------
    device : str or torch.device
        The profile's ``train.device``; decides the backend (:func:`backend_for`) and, for
        CUDA, makes ``cuda:<LOCAL_RANK>`` this process's device.
    environ : dict, optional
        Default ``os.environ``.

    Returns
    -------
    Ranks
        A single process (rank 0 of 1) when ``WORLD_SIZE`` is unset or 1.

    Raises
    ------
    ValueError
        ``WORLD_SIZE`` > 1 but another launcher variable is missing (the message names it),
        or more ranks on a machine than it has CUDA devices.
    """
    environ = os.environ if environ is None else environ
    if dist.is_available() and dist.is_initialized():
        return current()
    world_size = int(environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks()
    missing = [name for name in LAUNCHER_VARIABLES if name not in environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set: start the processes with "
            "torchrun (torchrun --nproc_per_node N -m melunmix.training.train ...), which sets them all"
        )
    ranks = Ranks(int(environ["RANK"]), world_size, int(environ["LOCAL_RANK"]))
    backend = backend_for(device)
    if backend == "nccl":
        if ranks.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {ranks.local_rank} has no CUDA device: this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    return ranks


def shutdown() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, ranks: Ranks) -> torch.device:
    """``cuda:<local_rank>`` for a CUDA device when several ranks train; ``device`` otherwise."""
    if ranks.is_distributed and device.type == "cuda":
        return torch.device("cuda", ranks.local_rank)
    return device


def barrier(ranks: Ranks) -> None:
    """Wait until every rank gets here (nothing to wait for in a single process)."""
    if ranks.is_distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(ranks: Ranks) -> Iterator[None]:
    """Run the block on rank 0 first, then on the others.

    For work that fills caches (the generated dataset, decoded audio, scaler
    statistics): rank 0 writes them, the other ranks read them afterwards instead of
    racing to write the same files.
    """
    if ranks.is_main:
        yield
        barrier(ranks)
    else:
        barrier(ranks)
        yield


def broadcast(values: list[Any], ranks: Ranks) -> list[Any]:
    """Rank 0's ``values`` (a list of picklable objects) on every rank."""
    if not ranks.is_distributed:
        return values
    values = list(values)
    dist.broadcast_object_list(values, src=0)
    return values


def agree(record: dict[str, Any], ranks: Ranks, what: str = "run") -> None:
    """Every rank's ``record`` (nested dict: settings, data fingerprint, runs) is rank 0's,
    or every rank raises before the first step.

    Ranks that disagree (a wrong profile file on one node, other data) would otherwise
    train different runs in lockstep: one rank waits in a collective the others never
    reach, or DDP fails on mismatched parameter shapes. Each rank compares its record
    with rank 0's and all ranks learn every difference, so all stop together.

    Raises
    ------
    ValueError
        One line naming the first ranks and keys that differ, with both values.
    """
    if not ranks.is_distributed:
        return
    mine = flat_keys(record)
    (reference,) = broadcast([mine], ranks)
    differences = sorted(key for key in set(mine) | set(reference) if mine.get(key) != reference.get(key))
    found = [None] * ranks.world_size
    dist.all_gather_object(found, (ranks.rank, [(key, mine.get(key), reference.get(key)) for key in differences]))
    bad = [(rank, diffs) for rank, diffs in found if diffs]
    if bad:
        rank, diffs = bad[0]
        shown = "; ".join(f"{key}: {theirs!r} on rank {rank}, {ours!r} on rank 0" for key, theirs, ours in diffs[:3])
        more = f" (and {len(diffs) - 3} more)" if len(diffs) > 3 else ""
        others = f"; ranks {[r for r, _ in bad]} differ" if len(bad) > 1 else ""
        raise ValueError(f"the ranks disagree on the {what}: {shown}{more}{others}; start every rank with the "
                         "same profile, options and data")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensor`` over the ranks (no gradient); ``tensor`` itself in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks whose gradient is the sum of the ranks' gradients.

    Rank ``r``'s input reaches every rank's output, so its gradient is the sum over the
    ranks of their output gradients: the backward pass is the same all-reduce.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


class SyncedBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` that normalises with the statistics of the global batch.

    In training mode under an initialised process group of more than one rank, the
    mean and the (biased) variance per feature are those of the rows of every rank
    together, computed in two passes (sum, then sum of squared deviations from the global
    mean) through an all-reduce that carries gradients; the running statistics are
    updated with the global values (unbiased variance, as ``BatchNorm1d``). Otherwise
    (evaluation, one process) it is ``BatchNorm1d``. Same parameters and buffers, so
    state dicts move freely between the two.

    Notes
    -----
    torch's ``SyncBatchNorm`` does the same on GPUs only; this one runs wherever the
    process group's backend does (gloo on CPUs, NCCL on GPUs), so the CPU tests check the
    code the GPUs run.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        view = (1, -1) + (1,) * (x.dim() - 2)
        rows = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        sums = _AllReduceSum.apply(torch.cat([x.sum(dims), rows]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = x - mean.view(view)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else float(self.momentum))
                unbiased = var * (count / (count - 1)) if float(count) > 1 else var
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.detach(), alpha=factor)
        out = centred * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            out = out * self.weight.view(view) + self.bias.view(view)
        return out


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """Make every ``BatchNorm1d`` of ``model`` a :class:`SyncedBatchNorm1d`, in place.

    Parameters, buffers and state-dict keys are unchanged (the class of each layer is
    swapped), so checkpoints and weights files are the same as a single process's.

    Returns
    -------
    nn.Module
        ``model``.
    """
    for module in model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = SyncedBatchNorm1d
    return model


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of rank ``rank``'s torch generator (dropout) in ``epoch`` of a multi-rank run."""
    return (int(seed) * 100_003 + int(epoch)) * 1_009 + int(rank)
