"""The worker's event loop: uvloop when the worker creates its own.

A worker is mostly event-loop work: timers, socket reads and task switches for every job. uvloop
(libuv, the loop uvicorn runs the API on) does that work in C: 100 slots of handlers that await
10 ms drain about 5% faster with it here (bench/scaling.py), and it comes with the API's server
already. A loop the caller runs (an app that embeds the worker, a test) is kept as it is."""

import asyncio


def new_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop, or asyncio's own where uvloop is not installed (another platform)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def use_uvloop() -> bool:
    """Sets a new loop (`new_loop`) as the thread's loop unless one is running; True when it
    did."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return False
    asyncio.set_event_loop(new_loop())
    return True
