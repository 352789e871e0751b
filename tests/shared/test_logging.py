"""JSON lines a log shipper can read: flat, one a line, stdlib records under their own logger."""

import json
import logging
import logging.config
from typing import Any

import arq.cli
import pytest
from forgestack_queue.arq_cli import use_forge_worker
from forgestack_shared.logging import configure_logging
from loguru import logger


def _lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _restore() -> Any:
    yield
    configure_logging("INFO")


def test_one_flat_json_object_a_line_with_the_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True, component="worker")
    logger.bind(job_id="j1", queue="q", attempt=2).info("done {}", "now")
    with logger.contextualize(request_id="r1"):
        logger.warning("plain")
    first, second = _lines(capsys.readouterr().err)
    assert first["message"] == "done now" and first["level"] == "INFO"
    assert (first["job_id"], first["queue"], first["attempt"]) == ("j1", "q", 2)
    assert first["logger"] == __name__ and first["component"] == "worker"
    assert first["time"].endswith("+00:00") or "T" in first["time"]
    assert second["request_id"] == "r1" and "job_id" not in second
    assert all(not isinstance(v, dict) for line in (first, second) for v in line.values())


def test_stdlib_records_keep_their_logger_name(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    logging.getLogger("uvicorn.error").info("Started server process")
    (line,) = _lines(capsys.readouterr().err)
    assert line["logger"] == "uvicorn.error"
    assert line["message"] == "Started server process"


def test_the_root_logger_gets_the_configured_level_not_zero() -> None:
    """At level 0 uvicorn's loggers are effectively TRACE, and it logs every ASGI message."""
    configure_logging("INFO")
    assert logging.getLogger().level == logging.INFO
    assert not logging.getLogger("uvicorn.error").isEnabledFor(5)
    configure_logging("DEBUG")
    assert logging.getLogger().level == logging.DEBUG


def test_arq_lines_print_once_after_arqs_cli_configures_logging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_forge_worker()
    configure_logging("INFO", json=True)
    # What `arq worker.WorkerSettings` does after importing our settings module.
    logging.config.dictConfig(arq.cli.default_log_config(False))  # type: ignore[attr-defined]
    logging.getLogger("arq.worker").info("Starting worker for 3 functions")
    captured = capsys.readouterr().err
    assert captured.count("Starting worker") == 1
    assert _lines(captured)[0]["logger"] == "arq.worker"


def test_an_exception_is_one_field_of_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = _lines(capsys.readouterr().err)
    assert line["exception"] == "ValueError: boom"


def test_uvicorns_access_lines_reach_loguru_only_when_info_is_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn formats an access line whenever its logger has a handler, whatever the level."""
    access = logging.getLogger("uvicorn.access")
    configure_logging("WARNING", json=True, component="api")
    assert not access.hasHandlers()
    configure_logging("INFO", json=True, component="api")
    assert access.hasHandlers()
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["logger"] == "uvicorn.access"
    assert line["message"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
