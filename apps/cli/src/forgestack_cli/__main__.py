"""`python -m forgestack_cli ...` is the same as the `forgestack` console script."""

from .main import main

main()
