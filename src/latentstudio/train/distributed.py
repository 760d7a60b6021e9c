"""Several processes training one model with DistributedDataParallel, as launched by torchrun.

`torchrun --nproc_per_node N -m latentstudio train ...` starts N processes and gives each
RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT. `setup()` reads them
and joins the process group (gloo for CPU tensors, NCCL for CUDA tensors); without them every
helper here is a no-op for a single process. Only rank 0 reads and writes the run folder:
`on_main` runs a function there and hands its result (or its UserError) to every rank, so
other machines need no access to the run folder.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from latentstudio.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """Where this process sits: its rank among `size` processes, `local_size` on this machine."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder, shows progress and runs the callbacks."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()
_owned_group = False  # whether setup() created the process group (and cleanup() may end it)


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The World torchrun describes in the environment; a single process without it."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        size = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
        local_size = int(env.get("LOCAL_WORLD_SIZE", str(size)))
    except ValueError:
        raise UserError("RANK/LOCAL_RANK/WORLD_SIZE must be whole numbers; launch with torchrun") from None
    if size < 1 or not 0 <= rank < size or not 0 <= local_rank < local_size:
        raise UserError(f"inconsistent torchrun environment: RANK={rank} LOCAL_RANK={local_rank} "
                        f"WORLD_SIZE={size} LOCAL_WORLD_SIZE={local_size}")
    return World(rank, local_rank, size, local_size)


def current() -> World:
    """This process's World: from the process group when one is running, else the environment."""
    if dist.is_available() and dist.is_initialized():
        env = world_from_env()
        return World(dist.get_rank(), env.local_rank, dist.get_world_size(), env.local_size)
    return world_from_env()


def setup() -> World:
    """Join the process group torchrun describes (once); a single process does nothing.

    The group carries gloo for CPU tensors and NCCL for CUDA tensors, so objects (configs,
    checkpoints) travel over gloo whichever device trains.
    """
    global _owned_group
    world = world_from_env()
    if not world.distributed or dist.is_initialized():
        return current()
    if not dist.is_available():
        raise UserError("this PyTorch build has no torch.distributed; train with one process")
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available() and world.local_rank < torch.cuda.device_count():
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=backend)
    _owned_group = True
    return current()


def cleanup() -> None:
    """Leave the process group if setup() created it."""
    global _owned_group
    if _owned_group and dist.is_initialized():
        dist.destroy_process_group()
    _owned_group = False


def rank_device(device: torch.device, world: World) -> torch.device:
    """Each process on a machine takes its own GPU (cuda:LOCAL_RANK); CPUs are shared."""
    if device.type != "cuda" or not world.distributed:
        return device
    if world.local_size > torch.cuda.device_count():
        raise UserError(f"{world.local_size} processes on this machine but only "
                        f"{torch.cuda.device_count()} CUDA GPUs; use --nproc_per_node "
                        f"{torch.cuda.device_count()} or fewer")
    return torch.device("cuda", world.local_rank)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def broadcast(obj: T, world: World) -> T:
    """Rank 0's `obj` on every rank (pickled over gloo)."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[[], T], world: World) -> T:
    """Run `fn` on rank 0 and give its result to every rank; a UserError there is raised on all."""
    if not world.distributed:
        return fn()
    result: tuple[bool, Any] = (True, None)
    if world.is_main:
        try:
            result = (True, fn())
        except UserError as e:
            result = (False, str(e))
    ok, value = broadcast(result, world)
    if not ok:
        raise UserError(value)
    return value


def all_reduce(tensor: torch.Tensor, world: World, op: str = "avg") -> torch.Tensor:
    """`tensor` reduced in place over all ranks ("avg", "sum" or "max")."""
    if world.distributed:
        if op == "avg":
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(world.size)
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` in DistributedDataParallel: gradients averaged over ranks during backward.

    Buffers (batch-norm statistics) stay per rank instead of being broadcast before every forward
    (each discriminator runs 3 forwards a step); rank 0's are the ones saved and previewed.
    """
    ddp = nn.parallel.DistributedDataParallel
    # Newer PyTorch names the setting forward_sync_buffers (and deprecates broadcast_buffers).
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else "broadcast_buffers")
    return ddp(module, device_ids=[device.index] if device.type == "cuda" else None,
               gradient_as_bucket_view=True, **{no_sync: False})


def launch_command(nproc: int, args: list[str]) -> list[str]:
    """The torchrun command that runs `latentstudio ARGS` in `nproc` processes on this machine."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "latentstudio", *args]


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 cpu.max, else v1 cfs quota); None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def set_cpu_threads(world: World) -> int:
    """At most one PyTorch thread per available CPU, shared among this machine's processes.

    PyTorch's default (the host's physical cores) ignores CPU affinity and cgroup quotas, so in
    a container it can run more threads than CPUs, which is slower than fewer threads. Never
    raises the default; OMP_NUM_THREADS, when set (torchrun sets 1), is respected as it is.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    n = max(1, available_cpus() // world.local_size)
    if n < torch.get_num_threads():
        torch.set_num_threads(n)
    return torch.get_num_threads()
