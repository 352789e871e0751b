"""The dev admin key: made once, kept under the data dir, so a restart of `forgestack dev` does
not invalidate the key in a developer's shell, scripts or HTTP client."""

import os
import secrets
from pathlib import Path

KEY_FILE = "admin-api-key"
KEY_MODE = 0o600
"""Only its owner may read it: it is an admin credential, even on a laptop."""


def dev_admin_key(data_dir: Path) -> tuple[str, bool]:
    """The kept key (made on first use) and whether it was just made."""
    path = data_dir / KEY_FILE
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        # An older or hand-made file may be wider: tighten it rather than refuse.
        if path.stat().st_mode & 0o777 != KEY_MODE:
            path.chmod(KEY_MODE)
        return key, False
    key = secrets.token_urlsafe(32)
    # O_EXCL with the mode set at creation: the key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True
