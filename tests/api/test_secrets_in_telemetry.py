"""No secret in any log line or metric label: the operator key, a presented wrong key, the SMTP
password, across requests that succeed, fail auth and enqueue jobs a worker then runs."""

import json

import httpx
import pytest
from forgestack_api.main import create_app
from forgestack_queue.testing import run_burst_worker
from forgestack_shared.settings import Settings, get_settings
from forgestack_worker.registry import HANDLERS

from tests.api.conftest import ADMIN_KEY

WRONG_KEY = "fsk_wrong-key-presented-by-a-caller"
SMTP_PASSWORD = "smtp-password-never-logged"


async def test_secrets_reach_no_log_line_and_no_metric(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
    queue_prefix: str,
) -> None:
    monkeypatch.setenv("LOG_JSON", "true")
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    get_settings.cache_clear()
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as anon:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            wrong = {"Authorization": f"Bearer {WRONG_KEY}"}
            assert (await anon.get("/api/v1/queues", headers=wrong)).status_code == 401
            job = {"data": {"user_id": "u1", "action": "fail-permanently"}}
            added = await anon.post("/api/v1/queues/my-new-job/jobs", json=job, headers=admin)
            assert added.status_code == 202
            await run_burst_worker(
                redis_url, [h for h in HANDLERS if h.queue == "my-new-job"], prefix=queue_prefix
            )
            metrics = (await anon.get("/metrics", headers=admin)).text
    logs = capsys.readouterr().err
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("job_id") == added.json()["id"] for line in lines)  # the logs were seen
    assert "forgestack_jobs_failed_total" in metrics
    for secret in (ADMIN_KEY, WRONG_KEY, SMTP_PASSWORD):
        assert secret not in logs
        assert secret not in metrics
