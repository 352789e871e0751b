"""The embedded Redis of `forgestack dev`: a real server, and a port lost to a race is retried."""

import os
import socket
from pathlib import Path

import pytest
import redis
from forgestack_cli import embedded_redis
from forgestack_cli.processes import stop_all


def test_starts_a_real_server_on_loopback(tmp_path: Path) -> None:
    proc, url = embedded_redis.start_embedded_redis(tmp_path, dict(os.environ))
    try:
        assert url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        client.close()
        assert (tmp_path / "redis" / "redis.log").exists()
    finally:
        stop_all([proc])
    assert proc.poll() is not None


def test_a_port_taken_after_the_check_is_retried_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pick = embedded_redis.pick_port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        picks: list[int] = []

        def racy_pick(first: int = embedded_redis.FIRST_PORT) -> int:
            port = taken if not picks else real_pick(first)
            picks.append(port)
            return port

        monkeypatch.setattr(embedded_redis, "pick_port", racy_pick)
        proc, url = embedded_redis.start_embedded_redis(tmp_path, dict(os.environ))
        try:
            assert picks[0] == taken
            assert len(picks) == 2
            assert url == f"redis://127.0.0.1:{picks[1]}/0"
            assert redis.Redis.from_url(url).ping()
        finally:
            stop_all([proc])
