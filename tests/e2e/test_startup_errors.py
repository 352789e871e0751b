"""A wrong setting stops each entry point (the API, the worker, `forgestack dev`) with one line
naming the setting and the fix, exit code 2, no traceback unless LOG_LEVEL=DEBUG, and no secret;
ENVIRONMENT=prod refuses the dev fallbacks. An unreachable Redis stops `forgestack dev` only: the
API and the worker wait for it (tests/e2e/test_start_before_redis.py)."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from forgestack_queue.producer import Queue
from forgestack_queue.records import JobRecord
from forgestack_queue.states import JobState
from forgestack_shared.catalog import MY_NEW_JOB
from forgestack_shared.jobs.my_new_job import MyNewJobData
from redis.asyncio import Redis

from tests.conftest import free_port
from tests.fixtures_db import PgTestDatabase

ENTRY_POINTS = {
    "api": [sys.executable, "-m", "forgestack_api"],
    "worker": [sys.executable, "-m", "arq", "worker.WorkerSettings"],
    "forgestack dev": [sys.executable, "-m", "forgestack_cli", "dev"],
}
SECRET = "hunter2-never-printed"
ACCEPTED_FORMS = "expected redis://host:6379/0"


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The test runner's environment without any ForgeStack setting, plus `settings`."""
    from forgestack_shared.settings import Settings

    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return env | {"FORGESTACK_DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "INFO"} | settings


def _run(entry: str, tmp_path: Path, **settings: str) -> tuple[int, list[str]]:
    """Run in an empty folder (no .env), and return the exit code and the non-empty lines."""
    proc = subprocess.run(
        ENTRY_POINTS[entry],
        cwd=tmp_path,
        env=_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return proc.returncode, lines


def _one_line(code: int, lines: list[str], entry: str) -> str:
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{entry}: "), lines
    return lines[0]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_redis_url_without_scheme_names_redis_url_and_the_expected_form(
    entry: str, tmp_path: Path
) -> None:
    line = _one_line(*_run(entry, tmp_path, REDIS_URL="localhost:6379"), entry)
    assert "REDIS_URL='localhost:6379' is invalid" in line
    assert ACCEPTED_FORMS in line
    assert "set REDIS_URL in the environment or .env" in line


@pytest.mark.parametrize("entry", ["forgestack dev"])
def test_an_unreachable_redis_names_redis_url_without_its_password(
    entry: str, tmp_path: Path
) -> None:
    port = free_port()
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    line = _one_line(*_run(entry, tmp_path, REDIS_URL=url), entry)
    assert f"REDIS_URL: cannot reach Redis at redis://:***@127.0.0.1:{port}/0" in line
    assert SECRET not in line


def test_log_level_debug_adds_the_traceback(tmp_path: Path) -> None:
    code, lines = _run("api", tmp_path, REDIS_URL="localhost:6379", LOG_LEVEL="debug")
    assert code != 0
    assert "Traceback (most recent call last):" in lines
    assert "StartupError" in lines[-1]


def test_several_bad_settings_share_the_one_line_and_secrets_stay_hidden(
    tmp_path: Path,
) -> None:
    code, lines = _run(
        "worker",
        tmp_path,
        LOG_LEVEL="verbose",
        SMTP_PORT="smtp",
        SMTP_PASSWORD=SECRET,
        FORGESTACK_ADMIN_API_KEY=SECRET,
    )
    line = _one_line(code, lines, "worker")
    assert "LOG_LEVEL='VERBOSE' is invalid" in line
    assert "SMTP_PORT='smtp' is invalid" in line
    assert "set LOG_LEVEL and SMTP_PORT in the environment or .env" in line
    assert SECRET not in line


@pytest.mark.parametrize(("entry", "environment"), [("api", "prod"), ("worker", "PROD")])
def test_prod_refuses_the_sqlite_fallback(entry: str, environment: str, tmp_path: Path) -> None:
    line = _one_line(*_run(entry, tmp_path, ENVIRONMENT=environment), entry)
    assert "DATABASE_URL: unset, and ENVIRONMENT=prod refuses the SQLite fallback" in line


def test_prod_refuses_an_api_without_admin_key(tmp_path: Path) -> None:
    db = "postgresql+asyncpg://forgestack_login@127.0.0.1:5432/forgestack"
    line = _one_line(*_run("api", tmp_path, ENVIRONMENT="prod", DATABASE_URL=db), "api")
    assert "FORGESTACK_ADMIN_API_KEY: unset, and ENVIRONMENT=prod needs an operator key" in line


def test_dev_refuses_prod(tmp_path: Path) -> None:
    line = _one_line(*_run("forgestack dev", tmp_path, ENVIRONMENT="prod"), "forgestack dev")
    assert line.startswith("forgestack dev: ENVIRONMENT: ")


def test_a_lower_case_log_level_starts_the_api(redis_url: str, tmp_path: Path) -> None:
    """`uv run api` as the README says, with LOG_LEVEL=debug: it serves."""
    port = free_port()
    uv = os.environ.get("UV") or shutil.which("uv")
    argv = [uv, "run", "--no-sync", "api"] if uv else ENTRY_POINTS["api"]
    env = _env(tmp_path, LOG_LEVEL="debug", REDIS_URL=redis_url, API_PORT=str(port))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not answer"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_superuser_database_login_is_refused_in_one_line(
    tmp_path: Path, redis_url: str, pg_database: PgTestDatabase
) -> None:
    code, lines = _run("api", tmp_path, REDIS_URL=redis_url, DATABASE_URL=pg_database.superuser_url)
    line = _one_line(code, lines, "api")
    assert line.startswith("api: DATABASE_URL: ")
    assert "superuser" in line and "forgestack db create-app-login" in line


def test_a_superuser_database_login_stops_the_worker_before_any_job_runs(
    tmp_path: Path, redis_url: str, pg_database: PgTestDatabase, queue_prefix: str
) -> None:
    """The worker checks the login in on_startup, beside its first claims (start-up is not held
    up by the database layer): its own start lines come first, then the refusal as the last line,
    exit code 2. A job waiting as it starts is not run (no handler starts before on_startup has
    returned) and, if claimed meanwhile, is released unspent."""
    added = asyncio.run(_add_job(redis_url, queue_prefix))
    code, lines = _run(
        "worker",
        tmp_path,
        REDIS_URL=redis_url,
        DATABASE_URL=pg_database.superuser_url,
        QUEUE_PREFIX=queue_prefix,
    )
    assert code == 2, lines
    assert lines[-1].startswith("worker: DATABASE_URL: "), lines
    assert "superuser" in lines[-1] and "forgestack db create-app-login" in lines[-1]
    assert not any("Traceback" in line or " ERROR " in line for line in lines), lines
    job = asyncio.run(_get_job(redis_url, queue_prefix, added))
    assert job is not None and job.state is JobState.WAITING, job
    assert job.attempts_made == 0


def test_a_bad_setting_in_the_env_file_stops_the_worker_before_its_first_claim(
    tmp_path: Path, redis_url: str, queue_prefix: str
) -> None:
    """Settings are read and checked in full as the worker's module loads, before it claims
    anything (about 6 ms of its start-up): a job waiting as it starts is never claimed, and the
    line names the setting whichever source (here `.env` in the working directory) it came from."""
    (tmp_path / ".env").write_text("WORKER_CONCURRENCY=0\n")
    added = asyncio.run(_add_job(redis_url, queue_prefix))
    code, lines = _run("worker", tmp_path, REDIS_URL=redis_url, QUEUE_PREFIX=queue_prefix)
    line = _one_line(code, lines, "worker")
    assert "WORKER_CONCURRENCY='0' is invalid" in line
    job = asyncio.run(_get_job(redis_url, queue_prefix, added))
    assert job is not None and job.state is JobState.WAITING, job
    assert job.processed_at is None  # never claimed, not even released


async def _add_job(redis_url: str, prefix: str) -> str:
    redis = Redis.from_url(redis_url)
    try:
        queue = Queue(redis, MY_NEW_JOB.name.value, prefix=prefix)
        data = MyNewJobData(user_id="u1", action="refused")
        return (await queue.add(data.model_dump(mode="json"), MY_NEW_JOB.defaults)).id
    finally:
        await redis.aclose()


async def _get_job(redis_url: str, prefix: str, job_id: str) -> JobRecord | None:
    redis = Redis.from_url(redis_url)
    try:
        queue = Queue(redis, MY_NEW_JOB.name.value, prefix=prefix)
        record = await queue.get_job(job_id)
        await redis.delete(*[k async for k in redis.scan_iter(match=f"{prefix}:*")])
        return record
    finally:
        await redis.aclose()
