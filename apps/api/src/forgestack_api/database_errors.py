"""The database failures a caller sees as something other than a 500: the database unavailable
(a 503 the caller may retry) and text PostgreSQL cannot store (a 422). Both are raised by the
doors to the database (`guarded_database`, `key_lookup`), mapped in `errors.py`; this module
names them without loading a driver or SQLAlchemy."""


class DatabaseUnavailableError(Exception):
    """The database could not answer; mapped to 503 with `"dependency": "database"`."""


class InvalidTextError(Exception):
    """A NUL (U+0000) in a stored field or a filter: the caller's input, mapped to 422."""
