"""Where the grid's cells run: one after another here, in local worker processes, or as tasks on a Ray cluster.

Every executor runs :func:`~satgate_monai.experiments.runner.run_cell` per cell, so the cache is the same
(``OUT/cells/<key>/``): a finished cell is never run again, an interrupted one resumes, and the records come back in
grid order for the report. The parallel executors check the whole grid first (finished cells are read, not
submitted; a finished cell of other settings stops the run before anything starts), then submit the pending cells
and gather the records as they finish. A cell that fails does not stop the others; the run then ends with
:class:`CellsFailed` naming every failed cell, and a rerun retries only those.

* :class:`SerialExecutor`: in this process (the default).
* :class:`LocalExecutor` (``--jobs N``): ``N`` spawned worker processes, each with ``threads`` torch threads and,
  given ``devices``, its own device (``--devices cuda:0,cuda:1``: one worker per GPU).
* :class:`RayExecutor` (``--ray ADDRESS``): each cell a Ray task asking for ``num_cpus``/``num_gpus``; Ray places
  it on any node with room. The workers write into ``OUT`` themselves, so ``OUT``, the data and the bundle must be
  on a filesystem every node sees under the same path (as on a SLURM cluster's shared storage), and every node
  needs this package installed.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from satgate_monai.experiments.grid import Cell
from satgate_monai.experiments.runner import figure_seeds, pending_cells, run_cell

__all__ = ["CellsFailed", "SerialExecutor", "LocalExecutor", "RayExecutor", "run_cells"]

logger = logging.getLogger(__name__)

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class CellsFailed(RuntimeError):
    """Some cells raised; the others finished and are cached. ``failures`` maps cell keys to error messages."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        listed = "; ".join(f"{k}: {v}" for k, v in failures.items())
        super().__init__(f"{len(failures)} cell(s) failed (the others are cached; a rerun retries these): {listed}")


def _set_threads(threads: int) -> None:
    import torch

    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    torch.set_num_threads(threads)


def _one_line(error: BaseException) -> str:
    """``Type: message`` of the error's root cause (MONAI's config parser wraps the network's own error)."""
    seen = set()
    while (error.__cause__ or error.__context__) is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    text = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _guarded(task: Any, cell: Cell, out_dir: Path, keep_figure_data: bool, rerun_stale: bool) -> tuple:
    """``(record, None)`` or ``(None, one-line error)``: errors cross process boundaries as text (a pickled
    exception loses its cause)."""
    try:
        return run_cell(task, cell, out_dir, keep_figure_data, rerun_stale), None
    except Exception as e:  # every failure of a cell is reported, the grid goes on
        logger.debug("cell %s failed", cell.key, exc_info=True)  # the driver reports it in one line
        return None, _one_line(e)


class SerialExecutor:
    """Every cell in this process, one after another, in grid order."""

    def run(self, task: Any, cells: Sequence[Cell], out_dir: Path, rerun_stale: bool = False, progress: bool = True,
            on_cell: Callable[[dict], None] | None = None) -> list[dict]:
        from tqdm.auto import tqdm

        first = figure_seeds(cells)
        records = []
        bar = tqdm(cells, desc="grid", unit="cell", disable=not progress)
        for cell in bar:
            bar.set_postfix_str(cell.key)
            record = run_cell(task, cell, out_dir, cell.seed == first[(cell.network, cell.gate)], rerun_stale)
            records.append(record)
            if on_cell is not None:
                on_cell(record)
        return records


class _ParallelExecutor:
    """Check the grid, submit the pending cells, gather records as they finish (subclasses submit and wait)."""

    def run(self, task: Any, cells: Sequence[Cell], out_dir: Path, rerun_stale: bool = False, progress: bool = True,
            on_cell: Callable[[dict], None] | None = None) -> list[dict]:
        from tqdm.auto import tqdm

        out_dir = Path(out_dir).resolve()
        first = figure_seeds(cells)
        pending = {c.key for c in pending_cells(task, cells, out_dir, rerun_stale)}
        records: dict[str, dict] = {}
        for cell in cells:
            if cell.key not in pending:
                records[cell.key] = run_cell(task, cell, out_dir, False)  # reads the finished cell.json
                if on_cell is not None:
                    on_cell(records[cell.key])
        todo = [c for c in cells if c.key in pending]
        logger.info("%d of %d cells to run (%d finished before)", len(todo), len(cells), len(cells) - len(todo))
        failures: dict[str, str] = {}
        bar = tqdm(total=len(todo), desc="grid", unit="cell", disable=not progress or not todo)
        for key, record, error in self._execute(task, todo, out_dir, first, rerun_stale):
            bar.update(1)
            if error is not None:
                failures[key] = error
                logger.error("cell %s failed: %s", key, error)
                continue
            records[key] = record
            if on_cell is not None:
                on_cell(record)
        bar.close()
        if failures:
            raise CellsFailed(failures)
        return [records[c.key] for c in cells]

    def _execute(self, task, cells, out_dir, first, rerun_stale):  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- local processes
_worker_device: str | None = None


def _init_local_worker(threads: int, devices: Any) -> None:
    global _worker_device
    import multiprocessing as mp

    # a spawned process inherits "spawn" as its default start method: the bundle's DataLoader would then spawn fresh
    # workers every epoch, each importing torch and MONAI again; use the platform's default (fork on Linux)
    mp.set_start_method(mp.get_all_start_methods()[0], force=True)
    _set_threads(threads)
    _worker_device = devices.get() if devices is not None else None


def _local_cell(task: Any, cell: Cell, out_dir: Path, keep_figure_data: bool, rerun_stale: bool) -> tuple:
    if _worker_device is not None:
        task = copy.copy(task)
        task.device = _worker_device
    return _guarded(task, cell, out_dir, keep_figure_data, rerun_stale)


class LocalExecutor(_ParallelExecutor):
    """Cells in ``jobs`` spawned worker processes on this machine.

    Args:
        jobs: worker processes (cells at once).
        threads: torch/OpenMP threads per worker. Defaults to 1.
        devices: one device per worker (``len(devices)`` must equal ``jobs``), e.g. ``["cuda:0", "cuda:1"]``;
            None: every worker uses the task's device.
    """

    def __init__(self, jobs: int, threads: int = 1, devices: Sequence[str] | None = None) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be a positive int, got {jobs!r}.")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int, got {threads!r}.")
        if devices is not None and len(devices) != jobs:
            raise ValueError(f"give one device per job: {jobs} jobs, devices {list(devices)!r}.")
        self.jobs, self.threads, self.devices = jobs, threads, list(devices) if devices is not None else None

    def _execute(self, task, cells, out_dir, first, rerun_stale):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")  # no forked torch/OpenMP state
        queue = None
        if self.devices is not None:
            queue = ctx.Queue()
            for device in self.devices:
                queue.put(device)
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx, initializer=_init_local_worker,
                                 initargs=(self.threads, queue)) as pool:
            futures = {pool.submit(_local_cell, task, c, out_dir, c.seed == first[(c.network, c.gate)], rerun_stale):
                       c.key for c in cells}
            for future in as_completed(futures):
                error = future.exception()  # the worker process died (its cell's own errors come back as text)
                yield (futures[future], *(future.result() if error is None else (None, _one_line(error))))


# ---------------------------------------------------------------------------------------------- Ray
def _ray_cell(task: Any, cell: Cell, out_dir: str, keep_figure_data: bool, rerun_stale: bool, threads: int,
              gpus: float) -> tuple:
    """Body of a Ray task: one cell, written into the shared ``out_dir``; ``(record, None)`` or ``(None, error)``."""
    _set_threads(threads)
    if gpus > 0 and str(task.device).startswith("cuda"):
        task = copy.copy(task)
        task.device = "cuda:0"  # Ray hands the task its GPU(s) through CUDA_VISIBLE_DEVICES
    return _guarded(task, cell, Path(out_dir), keep_figure_data, rerun_stale)


class RayExecutor(_ParallelExecutor):
    """Each cell a Ray task on the cluster at ``address``.

    Args:
        address: the cluster, e.g. ``"10.0.0.5:6379"``, ``"ray://head:10001"`` or ``"auto"`` (a cluster started on
            this machine with ``ray start``).
        num_cpus: CPUs each cell asks for (also its torch threads). Defaults to 1.
        num_gpus: GPUs each cell asks for. Defaults to 0.
    """

    def __init__(self, address: str, num_cpus: int = 1, num_gpus: float = 0.0) -> None:
        if not address or not isinstance(address, str):
            raise ValueError(f"a Ray address is needed (host:port, ray://host:port or auto), got {address!r}.")
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1:
            raise ValueError(f"num_cpus must be a positive int, got {num_cpus!r}.")
        if not float(num_gpus) >= 0:
            raise ValueError(f"num_gpus must be >= 0, got {num_gpus!r}.")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, float(num_gpus)

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs the ray package: pip install 'satgate-monai[cluster]'.") from None
        if ray.is_initialized():
            return ray, False
        self._probe()
        try:
            host = self.address.split("://")[-1].rpartition(":")[0]
            # a cluster on this machine's loopback: the driver advertises loopback too (not the machine's interface)
            local = {"_node_ip_address": "127.0.0.1"} if host.startswith("127.") or host == "localhost" else {}
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False, **local)
        except Exception as e:  # ray raises ConnectionError, RuntimeError or ValueError depending on the failure
            raise ValueError(f"cannot connect to the Ray cluster at {self.address!r}: {_one_line(e)}") from None
        return ray, True

    def _probe(self, timeout: float = 10.0) -> None:
        """Fail fast when ``host:port`` does not answer (``ray.init`` would retry for many minutes)."""
        import socket

        if self.address == "auto":
            return
        host, sep, port = self.address.split("://")[-1].rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"a Ray address is host:port, ray://host:port or auto, got {self.address!r}.")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
        except OSError as e:
            raise ValueError(f"cannot connect to the Ray cluster at {self.address!r}: {e}") from None

    def _execute(self, task, cells, out_dir, first, rerun_stale):
        ray, owned = self._connect()
        try:
            remote = ray.remote(_ray_cell).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
            refs = {remote.remote(task, c, str(out_dir), c.seed == first[(c.network, c.gate)], rerun_stale,
                                  self.num_cpus, self.num_gpus): c.key for c in cells}
            waiting = list(refs)
            while waiting:
                done, waiting = ray.wait(waiting, num_returns=1)
                ref = done[0]
                try:
                    record, error = ray.get(ref)
                except Exception as e:  # the task itself was lost (worker or node died)
                    record, error = None, _one_line(e)
                yield refs[ref], record, error
        finally:
            if owned:
                ray.shutdown()


def run_cells(task: Any, cells: Sequence[Cell], out_dir: Path, rerun_stale: bool = False, progress: bool = True,
              on_cell: Callable[[dict], None] | None = None, executor: Any | None = None) -> list[dict]:
    """Train and evaluate every cell not already done; returns the cell records in grid order.

    Args:
        task: a :class:`~satgate_monai.experiments.bundle_task.BundleTask` (``settings()``, ``train()``,
            ``evaluate()``).
        cells: the grid.
        out_dir: the run folder; cells live in ``out_dir/cells``.
        rerun_stale: retrain finished cells whose settings changed instead of refusing.
        progress: show a tqdm bar over the grid.
        on_cell: called with every finished record (e.g. to rewrite the report as the grid advances).
        executor: where the cells run (one of this module's executors); default: one after another
            in this process.
    """
    executor = executor if executor is not None else SerialExecutor()
    return executor.run(task, list(cells), Path(out_dir), rerun_stale=rerun_stale, progress=progress,
                        on_cell=on_cell)
