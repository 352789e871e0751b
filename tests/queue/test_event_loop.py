"""The worker's event loop: uvloop when the worker creates its own loop (arq's CLI), the caller's
loop when one is running (an app embedding the worker, these tests), asyncio's when asked."""

import asyncio
import subprocess
import sys
import textwrap

from forgestack_queue.runner import Handler
from forgestack_queue.worker import ForgeWorker
from pydantic import BaseModel


class _Data(BaseModel):
    n: int


async def _noop(job: object) -> None:
    return None


_BUILD = textwrap.dedent(
    """
    from forgestack_queue.runner import Handler
    from forgestack_queue.worker import ForgeWorker
    from pydantic import BaseModel

    class Data(BaseModel):
        n: int

    async def noop(job):
        return None

    worker = ForgeWorker(
        handlers=[Handler(queue="loop-probe", fn=noop, data_model=Data)],
        handle_signals=False,
        {extra}
    )
    print(type(worker.loop).__module__)
    """
)


def _loop_module(extra: str = "") -> str:
    """Built in a fresh interpreter, as arq's CLI builds it: no loop running, none set."""
    out = subprocess.run(
        [sys.executable, "-c", _BUILD.format(extra=extra)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def test_a_worker_that_creates_its_loop_runs_on_uvloop() -> None:
    assert _loop_module().startswith("uvloop")


def test_uvloop_false_keeps_asyncios_loop() -> None:
    assert _loop_module("uvloop=False,").startswith("asyncio")


async def test_a_running_loop_is_kept() -> None:
    worker = ForgeWorker(
        handlers=[Handler(queue="loop-probe", fn=_noop, data_model=_Data)],
        handle_signals=False,
    )
    assert worker.loop is asyncio.get_running_loop()
