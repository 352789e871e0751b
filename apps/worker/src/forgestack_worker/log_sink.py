"""loguru's own stderr sink is not set up while the worker imports.

Importing loguru adds a sink (`LOGURU_AUTOINIT`) that the worker's `configure_logging` removes a
few lines later, before any line is written. Each sink loguru adds looks up the interpreter's
library directories for its traceback formatter (36 `sysconfig.get_path` calls, about 5 ms);
skipping the one that is thrown away saves that much of a start before the first claim."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

AUTOINIT = "LOGURU_AUTOINIT"


@contextmanager
def default_sink_skipped() -> Iterator[None]:
    """Takes effect only when loguru is first imported inside it; the environment is as it was
    afterwards (child processes get loguru's default), and a value the operator set is kept."""
    if "loguru" in sys.modules or AUTOINIT in os.environ:
        yield
        return
    os.environ[AUTOINIT] = "false"
    try:
        yield
    finally:
        os.environ.pop(AUTOINIT, None)
