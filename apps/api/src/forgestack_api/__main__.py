"""`python -m forgestack_api` runs the same server as the `api` console script."""

from .main import run

run()
