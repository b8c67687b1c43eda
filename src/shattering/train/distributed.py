"""One run trained by several processes (data parallelism), as launched by ``torchrun``.

::

    torchrun --standalone --nproc-per-node 4 -m shattering run --dataset imagenet --data-dir DIR \\
        --model inception-v3 --batch-size 256 ...

``shattering.run`` (and so ``shatter run``) notices torchrun's environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and joins the process group: NCCL on CUDA (process ``r`` of
a node takes GPU ``LOCAL_RANK``), gloo on the CPU. Nothing changes in the config or the run id: the same run
trained by one process or by N is the same record, and either can resume the other.

What each process does:

- **Batches.** Every process draws the same permutation from the same seeded generator (the run's batch
  order), cuts the same global batches of ``batch_size`` examples, and takes its contiguous shard of each
  (``torch.tensor_split``: sizes differ by at most one; the last, partial batch is split the same way). The
  global batch size and the learning-rate schedule are the configured ones.
- **Gradients.** DistributedDataParallel averages gradients over the N processes; each process's loss is the
  *sum* of its shard's per-example losses times N / (global batch length), so the average is exactly the
  gradient of the mean loss over the global batch: the single-process update, up to float summation order.
  A process whose shard of a short last batch is empty runs one example with weight 0 (every process must
  take part in the all-reduce).
- **Batch normalization.** By default each process normalizes with the statistics of its own shard (as
  torchvision's reference scripts do): with BN the N-process run is not the single-process run, and the
  effective BN batch is batch_size / N. The running statistics are process 0's (DDP broadcasts its buffers
  before every forward pass). ``--sync-bn`` uses SyncBatchNorm (CUDA only, a PyTorch limit): statistics over
  the whole global batch, which matches one process up to float rounding. Models without BN (the MLPs,
  AlexNet) match one process either way; dropout draws differ (each process draws its own masks).
- **Evaluation.** In-memory data sets (small): process 0 evaluates alone and sends the metrics to the others.
  Streamed data sets (ImageNet): every process evaluates a contiguous shard of each split with process 0's
  batch-norm statistics, and the per-example results are gathered, so every process computes the same metrics.
  Either way every process books the same epoch and agrees on when the run is over.
- **Records.** Only process 0 locks the run folder and writes: config, labels, metrics, checkpoints, summary
  (the others hold a record that writes nothing: :func:`shattering.runs.record_for`). Resume works under
  torchrun: process 0 reads the newest intact checkpoint and sends it to the others, so the record folder need
  not be shared between nodes (the data must be readable on every node).

Sweeps are not run under torchrun (each process would run the whole sweep); use ``--executor ray`` for many
runs and torchrun for one large run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..devices import resolve_device
from ..errors import ConfigError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun started with more than one process in the group."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group and the collectives the trainer uses."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict:
        return {"world_size": self.world_size, "backend": self.backend}

    # -- collectives -----------------------------------------------------------------------------------
    def broadcast(self, obj):
        """Process 0's ``obj`` on every process (any picklable object)."""
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0, device=self._object_device())
        return box[0]

    def gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        """The processes' 1-D tensors concatenated in rank order (on the CPU)."""
        parts: list = [None] * self.world_size
        torch.distributed.all_gather_object(parts, tensor.cpu())
        return torch.cat(parts)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
        return out

    def barrier(self) -> None:
        torch.distributed.barrier()

    def _object_device(self):
        return self.device if self.backend == "nccl" else None

    # -- data and model --------------------------------------------------------------------------------
    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This process's contiguous part of a global batch and the factor on its summed loss (N / global
        length; 0 with a stand-in example when the part is empty)."""
        part = torch.tensor_split(idx, self.world_size)[self.rank]
        if len(part) == 0:
            return idx[:1], 0.0
        return part, self.world_size / len(idx)

    def split_range(self, n: int) -> range:
        """This process's contiguous part of ``range(n)`` (for sharded evaluation)."""
        bounds = torch.tensor_split(torch.arange(n), self.world_size)[self.rank]
        return range(int(bounds[0]), int(bounds[-1]) + 1) if len(bounds) else range(0)

    def wrap(self, model: torch.nn.Module, sync_bn: bool) -> torch.nn.Module:
        """The model wrapped for data parallelism (SyncBatchNorm first when asked)."""
        if sync_bn:
            if self.device.type != "cuda":
                raise ConfigError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs on GPUs only; leave it off "
                                  "on the CPU (each process then normalizes with its own shard's statistics).")
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Process 0's buffers (batch-norm running statistics) on every process."""
        for buf in model.buffers():
            torch.distributed.broadcast(buf, src=0)


def context(device: str = "auto") -> DistContext | None:
    """The process group of this torchrun process (joined on first use), or None outside torchrun."""
    if not launched_by_torchrun():
        return None
    missing = [v for v in (*TORCHRUN_VARIABLES, "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} are not: start data-parallel runs with "
                          "`torchrun --nproc-per-node N -m shattering run ...`.")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ["LOCAL_RANK"])
    dev = resolve_device(device)
    if dev.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"Process {rank} has LOCAL_RANK {local} but this node has "
                              f"{torch.cuda.device_count()} GPU(s); start at most that many processes per node.")
        torch.cuda.set_device(local)
        dev, backend = torch.device("cuda", local), "nccl"
    else:
        backend = "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
        atexit.register(_leave)
    return DistContext(rank, world, local, backend, dev)


_runs_open = 0  # distributed runs of this process begun and not ended normally (:func:`collective_work`)


@contextlib.contextmanager
def collective_work(ctx: DistContext | None) -> Iterator[None]:
    """Mark the body (one run's collectives) as work every process does in step; a body left by an exception
    stays open, so that :func:`_leave` does not wait at the exit for processes that are still inside it."""
    global _runs_open
    if ctx is None:
        yield
        return
    _runs_open += 1
    yield
    _runs_open -= 1


def _leave() -> None:
    """Leave the process group at exit, all processes together. A gloo process that leaves while another still
    holds the group open can abort on its way out ("terminate called without an active exception", SIGABRT),
    and torchrun then stops the others when process 0 stays a little longer after the last collective (it writes
    the record and measures the network); a barrier before leaving removed the aborts (bench/RESULTS.md). A
    process that fails inside a run skips the barrier: the others may be waiting in a collective it never
    reaches, and torchrun stops them when it exits."""
    if not torch.distributed.is_initialized():
        return
    if _runs_open == 0:
        with contextlib.suppress(Exception):
            torch.distributed.barrier()
    with contextlib.suppress(Exception):
        torch.distributed.destroy_process_group()


def is_main_process() -> bool:
    """False only in the processes 1..N-1 of a torchrun group (which should not print results)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def agree(ctx: DistContext | None, value):
    """``value`` as process 0 sees it (the identity outside torchrun)."""
    return value if ctx is None else ctx.broadcast(value)


def share_data(ctx: DistContext | None, build, streamed: bool):
    """The run's data on every process. Process 0 builds it first (it writes a streamed data set's labels
    file); a streamed data set (file list and labels) is then sent to the others, while an in-memory one is
    rebuilt by each process (too big to send) and checked against process 0's fingerprint."""
    if ctx is None:
        return build()
    if streamed:
        return ctx.broadcast(build() if ctx.is_main else None)
    data = build() if ctx.is_main else None
    reference = ctx.broadcast(data.fingerprint if ctx.is_main else None)
    if not ctx.is_main:
        data = build()
    if data.fingerprint != reference:
        raise ConfigError(f"Process {ctx.rank} prepared other data than process 0 (fingerprint {data.fingerprint}, "
                          f"process 0: {reference}); every node must hold the same data files.")
    return data
