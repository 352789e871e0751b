"""The worker's imports run with the cyclic garbage collector paused.

Importing the worker creates hundreds of thousands of long-lived objects (modules, classes,
pydantic schemas); the collector, triggered every few hundred allocations, walks them over and
over and finds nothing to free: about a tenth of the time from exec to the first claim.
After the imports, what exists is frozen (`gc.freeze`): objects made while the collector was off
all sit in its youngest generation, so the first collection after it is re-enabled would walk
every one of them at once, in the middle of the first claims; frozen, they are never walked again
(they live as long as the process anyway)."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Re-enables the collector as it found it, even when an import fails (the process may still
    report the error and run its exit handlers)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
