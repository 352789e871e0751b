"""HTTP enqueue benchmark: ForgeStack's API against a bare FastAPI + arq app, in one run, on one
dedicated Redis, with `wrk` as the load generator. `uv run python bench/http_door.py` (full: 20 s
per measurement, about 5 minutes) or `--seconds 5` (a smoke run); writes its section of
bench/RESULTS.md.

Both apps run as real uvicorn servers on loopback ports, one process and then two (`--workers 2`).
ForgeStack is `python -m forgestack_api` (what `uv run api` runs) on a fresh PostgreSQL database
(the app's non-superuser login, row-level security on) with an organisation key minted by
`forgestack api-keys create`: auth, validation, request ids, metrics and the audit event are all on
the measured path. The bare app (`fsbench/bare_http.py`) validates the same data model and awaits
arq's `enqueue_job`, nothing else."""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import redis
from forgestack_queue.keys import QueueKeys
from fsbench import machine
from fsbench.httpproc import Server, http_server
from fsbench.scratch_db import scratch_database
from fsbench.sections import write_section
from fsbench.server import RedisServer, dedicated_redis, free_port, server_cpu_s
from fsbench.wrk import WrkResult, ensure_wrk, run_wrk, write_script

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BEGIN, END = "<!-- http-door:begin -->", "<!-- http-door:end -->"
QUEUE = "my-new-job"
PREFIX = "fsbenchhttp"
ROUTE = f"/api/v1/queues/{QUEUE}/jobs"
BODY = {"data": {"user_id": "u1", "action": "greet", "payload": {"n": 1}}}
BARE, FORGE = "bare FastAPI + arq", "ForgeStack API"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Phase:
    system: str
    procs: int
    route: str
    """`single` (one job per request) or `bulk`."""
    jobs_per_request: int
    wrk: WrkResult
    server_cpu_ms_per_request: float
    redis_cpu_ms_per_request: float
    rss_mib: list[float]
    """Each serving process's resident memory right after the load."""
    stored: int
    """Jobs found in Redis after the phase (at least the requests answered times the batch)."""
    audit_jobs: int
    other_cpus: float
    """CPUs kept busy by anything but the server, wrk and Redis during the phase."""
    load_1min: float

    @property
    def jobs_per_s(self) -> float:
        return self.wrk.rate * self.jobs_per_request


@dataclass(frozen=True)
class Setup:
    wrk: str
    redis: RedisServer
    env: dict[str, str]
    bearer: str
    workdir: Path
    seconds: float
    warmup_s: float
    threads: int
    connections: int
    bulk: int


def mint_key(env: dict[str, str]) -> str:
    """An organisation and a member key through the product's own command."""
    out = subprocess.run(
        [sys.executable, "-m", "forgestack_cli", "api-keys", "create", "--org", "http-bench"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1]


def bare_command(port: int, procs: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "fsbench.bare_http:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(procs),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def forge_env(setup: Setup, port: int, procs: int) -> dict[str, str]:
    return setup.env | {"API_HOST": "127.0.0.1", "API_PORT": str(port), "API_WORKERS": str(procs)}


def measure(
    setup: Setup, server: Server, system: str, route: str, script: Path, jobs_per_request: int
) -> Phase:
    url = f"http://127.0.0.1:{server.port}{ROUTE}" + (":bulk" if route == "bulk" else "")
    ctl = setup.redis.control()
    args = {"threads": setup.threads, "connections": setup.connections}
    run_wrk(setup.wrk, url, script, seconds=setup.warmup_s, **args)
    ctl.flushall()
    load = os.getloadavg()[0]
    busy0, srv0, redis0 = machine.cpu_busy_s(), server.tree_cpu_s(), server_cpu_s(ctl)
    result = run_wrk(setup.wrk, url, script, seconds=setup.seconds, **args)
    busy = machine.cpu_busy_s() - busy0
    srv, red = server.tree_cpu_s() - srv0, server_cpu_s(ctl) - redis0
    rss = server.rss_per_worker_mib()
    if result.errors:
        raise RuntimeError(f"{system} {route}: {result.errors} errors or non-2xx answers")
    stored, audit = stored_jobs(ctl, system)
    if stored < result.requests * jobs_per_request:
        raise RuntimeError(f"{system} {route}: {stored} jobs stored for {result.requests} answers")
    requests = max(result.requests, 1)
    return Phase(
        system=system,
        procs=server.workers,
        route=route,
        jobs_per_request=jobs_per_request,
        wrk=result,
        server_cpu_ms_per_request=srv * 1000 / requests,
        redis_cpu_ms_per_request=red * 1000 / requests,
        rss_mib=rss,
        stored=stored,
        audit_jobs=audit,
        other_cpus=max(0.0, busy - srv - red - result.cpu_s) / result.duration_s,
        load_1min=load,
    )


def stored_jobs(ctl: redis.Redis, system: str) -> tuple[int, int]:
    """(jobs of the measured queue, audit jobs): nothing answered 202 may be missing."""
    if system == BARE:
        return int(ctl.zcard("arq:queue")), 0  # type: ignore[arg-type]
    jobs = ctl.zcard(QueueKeys(PREFIX, QUEUE).wait)
    audit = ctl.zcard(QueueKeys(PREFIX, "audit-logs").wait)
    return int(jobs), int(audit)  # type: ignore[arg-type]


def run_bare(setup: Setup, procs: int, script: Path) -> list[Phase]:
    port = free_port()
    env = os.environ | {"BENCH_REDIS_URL": setup.redis.url}
    log(f"{BARE}, {procs} process(es)")
    with http_server(
        bare_command(port, procs), env=env, cwd=HERE, port=port, workers=procs,
        ready_path="/healthz", log=setup.workdir / f"bare-{procs}.log",
    ) as server:  # fmt: skip
        phase = measure(setup, server, BARE, "single", script, 1)
    report(phase)
    return [phase]


def run_forge(setup: Setup, procs: int, script: Path, bulk_script: Path) -> list[Phase]:
    port = free_port()
    log(f"{FORGE}, {procs} process(es)")
    with http_server(
        [sys.executable, "-m", "forgestack_api"], env=forge_env(setup, port, procs), cwd=ROOT,
        port=port, workers=procs, ready_path="/readyz", log=setup.workdir / f"forge-{procs}.log",
    ) as server:  # fmt: skip
        single = measure(setup, server, FORGE, "single", script, 1)
        report(single)
        bulk = measure(setup, server, FORGE, "bulk", bulk_script, setup.bulk)
        report(bulk)
    return [single, bulk]


def report(p: Phase) -> None:
    log(
        f"  {p.route}: {p.wrk.rate:,.0f} req/s ({p.jobs_per_s:,.0f} jobs/s), p50/p99 "
        f"{p.wrk.p50_ms:.1f}/{p.wrk.p99_ms:.1f} ms, server CPU {p.server_cpu_ms_per_request:.2f} "
        f"ms/req, Redis CPU {p.redis_cpu_ms_per_request:.3f} ms/req, RSS {', '.join(f'{r:.0f}' for r in p.rss_mib)} MiB, other CPUs {p.other_cpus:.2f}"
    )


async def bench(args: argparse.Namespace, wrk: str, workdir: Path) -> list[Phase]:
    phases: list[Phase] = []
    with dedicated_redis() as redis_server:
        async with scratch_database(args.postgres_url, "fsbench_http") as app_url:
            env = os.environ | {
                "REDIS_URL": redis_server.url,
                "DATABASE_URL": app_url,
                "QUEUE_PREFIX": PREFIX,
                "LOG_LEVEL": args.log_level,
                "FORGESTACK_DATA_DIR": str(workdir / "data"),
            }
            bearer = mint_key(env)
            setup = Setup(
                wrk=wrk,
                redis=redis_server,
                env=env,
                bearer=bearer,
                workdir=workdir,
                seconds=args.seconds,
                warmup_s=args.warmup,
                threads=args.threads,
                connections=args.connections,
                bulk=args.bulk,
            )
            bare_script = write_script(workdir / "bare.lua", BODY, None)
            script = write_script(workdir / "single.lua", BODY, bearer)
            bulk_script = write_script(workdir / "bulk.lua", {"jobs": [BODY] * args.bulk}, bearer)
            for rep in range(args.reps):
                for procs in args.procs:
                    runs = [
                        partial(run_bare, setup, procs, bare_script),
                        partial(run_forge, setup, procs, script, bulk_script),
                    ]
                    # Taking turns at going first, so a drift in the machine's load hits both.
                    for run in runs if (rep + procs) % 2 else runs[::-1]:
                        phases += run()
    return phases


def median_of(phases: list[Phase], system: str, procs: int, route: str) -> Phase | None:
    found = [p for p in phases if (p.system, p.procs, p.route) == (system, procs, route)]
    if not found:
        return None
    rate = statistics.median_low(p.wrk.rate for p in found)
    return next(p for p in found if p.wrk.rate == rate)


def section(phases: list[Phase], args: argparse.Namespace, notes: list[str]) -> str:
    rows, targets = [], []
    for procs in args.procs:
        bare = median_of(phases, BARE, procs, "single")
        forge = median_of(phases, FORGE, procs, "single")
        bulk = median_of(phases, FORGE, procs, "bulk")
        if not (bare and forge and bulk):
            continue
        rate_ratio = forge.wrk.rate / bare.wrk.rate
        p99_ratio = forge.wrk.p99_ms / bare.wrk.p99_ms
        bulk_ratio = bulk.jobs_per_s / bare.jobs_per_s
        for p in (bare, forge, bulk):
            rows.append(row(p, bare))
        targets += [
            target(f"{procs} process(es): single-job req/s >= 1.0x bare", rate_ratio, 1.0, ">="),
            target(f"{procs} process(es): single-job p99 <= 1.5x bare", p99_ratio, 1.5, "<="),
            target(f"{procs} process(es): bulk jobs/s >= 3x bare's", bulk_ratio, 3.0, ">="),
        ]
        rss = max(max(forge.rss_mib), max(bulk.rss_mib))
        targets.append(
            f"| {procs} process(es): API RSS after the load < 100 MiB (per process) | "
            f"{rss:.0f} MiB | {'PASS' if rss < 100 else '**FAIL**'} |"
        )
    every = "\n".join(
        f"| {p.system} | {p.procs} | {p.route} | {p.wrk.rate:,.0f} | {p.wrk.p50_ms:.1f} / "
        f"{p.wrk.p99_ms:.1f} | {p.server_cpu_ms_per_request:.2f} | "
        f"{p.redis_cpu_ms_per_request:.3f} | {p.other_cpus:.2f} | "
        f"{p.load_1min:.2f} |"
        for p in phases
    )
    machine_notes = "\n".join(f"- {n}" for n in notes)
    return f"""{BEGIN}
## HTTP enqueue: ForgeStack's API against a bare FastAPI + arq app

Written by `uv run python bench/http_door.py{" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""}`.
Both apps ran in the same run, on the same machine, against the same dedicated Redis, taking turns
(each configuration {args.reps} time(s), the median run by req/s shown). Load: `wrk -t{args.threads}
-c{args.connections} -d{args.seconds:g}s` after a {args.warmup:g} s warm-up, POSTing
`{ROUTE}` with the body `{BODY}`; the bulk route gets {args.bulk} such jobs per request
(`{ROUTE}:bulk`). Every phase checks that wrk saw no error and no non-2xx answer, and that Redis
holds at least as many jobs as answers (ForgeStack: one audit job per created job as well).

- Bare app: FastAPI, the catalog's `MyNewJobData` as the body model, `await
  pool.enqueue_job(...)` on arq's own pool (arq's defaults: pickle); uvicorn `--no-access-log`,
  log level warning.
- ForgeStack: `python -m forgestack_api` (`uv run api`), `LOG_LEVEL={args.log_level}`, tracing off
  (the default); PostgreSQL as the app's non-superuser login; a member key of a fresh organisation
  (`forgestack api-keys create`). On the path: bearer auth (org key lookups cached for
  `API_KEY_CACHE_TTL_S`), the body limit, request id, HTTP metrics, catalog validation of data and
  options, the job's add and its audit event (`job.enqueued`, one job in the audit-logs queue).
- Both under uvicorn with the same loop and HTTP parser (uvloop, httptools); N processes is
  uvicorn `--workers N` (`API_WORKERS=N`). wrk, the servers and Redis share the machine's CPUs.
- Server CPU: user + system of the server's process tree over the measured window, per request;
  Redis CPU: the dedicated redis-server's over the same window. RSS: each serving process right
  after the load. Other CPUs: the machine's busy time minus the server's, wrk's and Redis' over
  the window, i.e. how much of the 2 CPUs other work took from the run.

| system | processes | route | req/s | jobs/s | p50 / p99 (ms) | server CPU (ms/req) | Redis CPU (ms/req) | RSS per process (MiB) | vs bare (req/s; bulk: jobs/s) |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

| target (issue 15, point 1) | measured | result |
| --- | ---: | ---: |
{chr(10).join(targets)}

Every run:

| system | processes | route | req/s | p50 / p99 (ms) | server CPU (ms/req) | Redis CPU (ms/req) | other CPUs busy | load (1 min) at start |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |
{every}

{machine_notes}
{END}
"""


def row(p: Phase, bare: Phase) -> str:
    ratio = p.jobs_per_s / bare.jobs_per_s
    return (
        f"| {p.system} | {p.procs} | {p.route} | {p.wrk.rate:,.0f} | {p.jobs_per_s:,.0f} | "
        f"{p.wrk.p50_ms:.1f} / {p.wrk.p99_ms:.1f} | {p.server_cpu_ms_per_request:.2f} | "
        f"{p.redis_cpu_ms_per_request:.3f} | {', '.join(f'{r:.0f}' for r in p.rss_mib)} | "
        f"{ratio:.2f}x |"
    )


def target(name: str, value: float, bound: float, op: str) -> str:
    ok = value >= bound if op == ">=" else value <= bound
    return f"| {name} | {value:.2f}x | {'PASS' if ok else '**FAIL**'} |"


def write_results(text: str, path: Path) -> None:
    write_section(path, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20, help="wrk duration per measurement")
    parser.add_argument("--warmup", type=float, default=3, help="wrk warm-up before each")
    parser.add_argument("--reps", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="server processes")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c")
    parser.add_argument("--bulk", type=int, default=100, help="jobs per bulk request")
    parser.add_argument("--log-level", default="WARNING", help="ForgeStack's LOG_LEVEL")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    try:
        wrk = ensure_wrk()
    except RuntimeError as exc:
        print(f"http_door: {exc}", file=sys.stderr)
        return 2
    load_before = machine.load_average()
    started, t0 = datetime.now(UTC), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fsbench-http-") as tmp:
        phases = asyncio.run(bench(args, wrk, Path(tmp)))
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    head = subprocess.run(
        ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    notes = [
        f"ForgeStack at `{head}`" if head else "ForgeStack: not a git checkout",
        f"CPU: {machine.cpu_model()}, {os.cpu_count()} logical CPUs (nproc); "
        f"{version.split(' [')[0].strip() or 'wrk'}",
        f"Load average (1/5/15 min) before: {load_before}; after: {machine.load_average()} "
        "(other work on the machine makes every figure noisier)",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {(time.monotonic() - t0) / 60:.1f} min",
    ]
    text = section(phases, args, notes)
    print(text)
    if not args.no_write:
        write_results(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
