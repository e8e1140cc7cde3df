"""A rank of the batch-norm test (tests/training/test_distributed.py), spawned: kept apart so that the
spawned processes import only torch and melunmix.training.distributed."""

import torch


def batchnorm_rank(rank: int, init_file: str, out_file: str) -> None:
    """One rank of test_distributed.py::test_synced_batchnorm_is_batchnorm_on_the_global_batch."""
    import torch.distributed as dist

    from melunmix.training.distributed import SyncedBatchNorm1d

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        x = torch.randn(8, 5, dtype=torch.float64) * 3 + 1
        weights = torch.randn(8, 5, dtype=torch.float64)
        rows = slice(0, 5) if rank == 0 else slice(5, 8)  # unequal shares
        layer = SyncedBatchNorm1d(5).double()
        with torch.no_grad():
            layer.weight.uniform_(0.5, 1.5)
            layer.bias.uniform_(-1, 1)
        part = x[rows].clone().requires_grad_(True)
        out = layer(part)
        # The loss of the whole batch: each rank's part of the sum.
        (out * weights[rows]).sum().backward()
        grads = torch.stack([layer.weight.grad, layer.bias.grad])
        dist.all_reduce(grads)  # as DDP sums (then averages) parameter gradients
        torch.save({"out": out.detach(), "x_grad": part.grad, "param_grads": grads,
                    "running": torch.stack([layer.running_mean, layer.running_var])}, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()
