"""``finish_distributed``: the end of a DDP bundle run releases the wrapper's hold on the process group.

A gloo process group still held by a ``DistributedDataParallel`` wrapper at interpreter shutdown makes a rank abort
now and then after a complete run (``terminate called without an active exception``); the bundles' ``finalize``
calls :func:`~satgate_monai.bundle.finish_distributed` to prevent it. Runs in a subprocess (one-rank gloo group), so
the test process's torch.distributed state stays untouched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch, torch.distributed as dist
    from satgate_monai.bundle.distributed import finish_distributed
    assert finish_distributed(None) is False  # no group: nothing to do
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1])
    dist.init_process_group("gloo", rank=0, world_size=1)
    net = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(1, 2, 3))
    net(torch.randn(1, 1, 8, 8)).sum().backward()
    assert finish_distributed(net) is True
    assert not dist.is_initialized()
    held = [a for a in ("reducer", "logger", "process_group") if a in net.__dict__]
    assert not held, f"DDP still holds {held}"
    assert net.module(torch.randn(1, 1, 8, 8)).shape == (1, 2, 6, 6)  # the wrapped network stays usable
    print("finished")
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not __import__("torch").distributed.is_available(), reason="torch built without distributed")
def test_finish_distributed_releases_the_process_group():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(_free_port())], capture_output=True, text=True,
                          timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0 and "finished" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
