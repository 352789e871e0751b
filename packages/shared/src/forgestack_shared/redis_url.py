"""REDIS_URL in the forms we accept, including a Sentinel set, as arq's `RedisSettings`.

One setting names every Redis deployment (a URL fits one environment variable, a Kubernetes
secret and compose alike), so a Sentinel set is a URL too:
`redis+sentinel://[user:password@]host:26379,host2:26379/<master name>[/<db>]`. The password
is the master's; the sentinels themselves are reached without one."""

from urllib.parse import unquote, urlsplit

import redis
from arq.connections import RedisSettings
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_DEFAULT_PORT = 26379
EXPECTED_FORMS = (
    "redis://host:6379/0, rediss://host:6380/0, unix:///path/redis.sock or "
    f"{SENTINEL_SCHEME}://host:26379,host2:26379/mymaster/0"
)


class RedisUrlError(ValueError):
    """The URL is not one of the accepted forms; the message says which forms are."""


def parse_redis_url(url: str) -> RedisSettings:
    """Raises `RedisUrlError` for anything `arq` or redis-py would reject later, less clearly."""
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced IPv6 brackets; the message would add nothing
        raise RedisUrlError(f"malformed URL: expected {EXPECTED_FORMS}") from None
    if parts.scheme == SENTINEL_SCHEME:
        return _parse_sentinel(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise RedisUrlError(f"expected {EXPECTED_FORMS}")
    if parts.scheme != "unix" and not parts.hostname:
        raise RedisUrlError(f"no host: expected {EXPECTED_FORMS}")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        return RedisSettings.from_dsn(url)
    except ValueError as exc:
        raise RedisUrlError(f"{exc}: expected {EXPECTED_FORMS}") from None


def _parse_sentinel(url: str) -> RedisSettings:
    # urlsplit refuses several host:port pairs in one netloc, so split by hand.
    rest = url[len(SENTINEL_SCHEME) + 3 :]
    netloc, _, path = rest.partition("/")
    credentials, _, hosts = netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    segments = [s for s in path.split("/") if s]
    if not hosts or not segments or len(segments) > 2:
        raise RedisUrlError(f"a Sentinel URL names hosts and a master: expected {EXPECTED_FORMS}")
    try:
        sentinels = [_host_port(h) for h in hosts.split(",")]
        database = int(segments[1]) if len(segments) == 2 else 0
    except ValueError:
        raise RedisUrlError(f"bad host, port or db: expected {EXPECTED_FORMS}") from None
    return RedisSettings(
        host=sentinels,
        database=database,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel=True,
        sentinel_master=segments[0],
    )


def _host_port(item: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`."""
    if item.startswith("["):
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise ValueError(item)
    return host, int(port) if port else SENTINEL_DEFAULT_PORT


def sync_client(settings: RedisSettings, *, timeout_s: float = 2.0) -> "redis.Redis":
    """A blocking client for the same Redis arq's pool reaches, for start-up checks and the CLI."""
    if settings.sentinel:
        assert isinstance(settings.host, list)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.host,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            settings.sentinel_master,
            db=settings.database,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            username=settings.username,
            password=settings.password,
        )
        return master
    assert isinstance(settings.host, str)
    return redis.Redis(
        host=settings.host,
        port=settings.port,
        unix_socket_path=settings.unix_socket_path,
        db=settings.database,
        ssl=settings.ssl,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        username=settings.username,
        password=settings.password,
    )
