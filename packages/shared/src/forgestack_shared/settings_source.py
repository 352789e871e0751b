"""Where the settings' values come from, in pydantic-settings' order for flat settings: keyword
arguments, then the environment (names matched case-insensitively), then a `.env` file, then
the field's default.

Not pydantic-settings itself: importing it loads every source it offers (a command-line parser,
cloud secret stores, TOML, YAML), 12 ms of a worker's ~300 ms start-up to its first claim, for
the two sources used here. Every setting is a scalar, so no value needs JSON decoding; the
validation (types, bounds, validators) stays pydantic's, on the model."""

import os
from collections.abc import Iterable
from pathlib import Path

ENV_FILE = ".env"
"""Read from the working directory, as pydantic-settings' `env_file=".env"` did."""


def settings_values(fields: Iterable[str], env_file: str | Path | None) -> dict[str, str]:
    """The environment's and the env file's values of these fields, keyed by field name. A
    variable set in the environment wins over the file's; names nobody declared are ignored."""
    names = frozenset(fields)
    values: dict[str, str] = {}
    path = Path(env_file).expanduser() if env_file is not None else None
    if path is not None and path.is_file():
        # Only when there is a file to read: python-dotenv is not needed otherwise.
        from dotenv import dotenv_values

        for key, value in dotenv_values(path).items():
            if value is not None and key.lower() in names:
                values[key.lower()] = value
    for key, value in os.environ.items():
        if key.lower() in names:
            values[key.lower()] = value
    return values
