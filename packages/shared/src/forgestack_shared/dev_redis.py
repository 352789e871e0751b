"""Where `forgestack dev` leaves the URL of the Redis it embedded, so a process started beside it
with no variables (`uv run arq worker.WorkerSettings --check`, a second worker) finds that Redis
instead of the default port, where dev's Redis never is."""

from pathlib import Path


def dev_redis_url_file(data_dir: Path) -> Path:
    return data_dir / "redis" / "url"


def dev_redis_url(data_dir: Path) -> str | None:
    """The running dev stack's Redis, or None when no `forgestack dev` embedded one here."""
    try:
        url = dev_redis_url_file(data_dir).read_text().strip()
    except OSError:
        return None
    return url or None
