"""OpenTelemetry stays unloaded in a worker that cannot trace (start-up to first claim), yet a job
that carries a trace parent still gets it: its attempt names the trace and passes it on."""

import subprocess
import sys

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

CHECK = f"""
import sys
from forgestack_queue.meta import current_meta
from forgestack_queue.options import JobOptions
from forgestack_queue.runner import ClaimedJob
from forgestack_queue.tracing import attempt_span, spans_recorded

def job(meta):
    return ClaimedJob(id="j1", queue="q", name="q", data=b"{{}}", options=JobOptions(),
                      attempt=1, created_at_ms=0, token="t", meta=meta)

print(spans_recorded(), "opentelemetry" in sys.modules)
with attempt_span(job({{"request_id": "r1"}})):
    print(dict(current_meta()), "opentelemetry" in sys.modules)
with attempt_span(job({{"traceparent": {PARENT!r}}})):
    print(current_meta()["traceparent"].split("-")[1], "opentelemetry" in sys.modules)
print(spans_recorded())
"""


def run(env_extra: dict[str, str] | None = None) -> list[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(env_extra or {})
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_untraced_attempts_do_not_load_opentelemetry_and_a_trace_parent_still_travels() -> None:
    no_provider, untraced, traced, still_none = run()
    assert no_provider == "False False"
    # attempt_span adds nothing (the worker restores the job's own meta around it).
    assert untraced == "{} False"
    # A parent from the API: the attempt's context carries the same trace to the jobs it adds.
    assert traced == f"{TRACE_ID} True"
    assert still_none == "False"
