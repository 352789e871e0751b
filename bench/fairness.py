"""Per-organisation fairness (issue 15, target 2), on a dedicated Redis, in one run:

- a late owner behind a burst: org A adds 20,000 jobs, then org B adds 10, one worker process at
  concurrency 10 with no-op handlers: how long B's jobs wait to start (and, for reference, the
  same 10 adds on an idle queue);
- drain throughput of 20,000 jobs spread over 1,000 owners against the same jobs of one owner;
- optionally (`--baseline-rev REV`) the plain drain of the main bench (unowned jobs, 1 and 2
  processes) with this tree's job layer against REV's, workers of both in the same run.

`uv run python bench/fairness.py [--quick] [--baseline-rev main]` writes its section of
bench/RESULTS.md; `bench/run.py` runs it too, after its own phases."""

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forgestack_queue.keys import QueueKeys
from forgestack_queue.producer import Queue
from fsbench import counters, machine, phases
from fsbench.fairproc import FairSpec, fair_worker_process
from fsbench.group import WorkerGroup
from fsbench.revisions import commit_of, sources_at
from fsbench.sections import write_section
from fsbench.server import RedisServer, dedicated_redis
from fsbench.systems import BULK_BATCH, FORGE, FORGE_OPTIONS, PREFIX, QUEUE, System, payload
from loguru import logger
from redis.asyncio import Redis

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- fairness:begin -->", "<!-- fairness:end -->"
LATE_TARGET_MS = 100.0
OWNERS_TARGET = 0.8


@dataclass(frozen=True)
class FairPlan:
    burst: int
    late: int
    concurrency: int
    drain_jobs: int
    owners: int
    reps: int


FULL = FairPlan(burst=20_000, late=10, concurrency=10, drain_jobs=20_000, owners=1000, reps=3)
QUICK = FairPlan(burst=5000, late=10, concurrency=10, drain_jobs=5000, owners=250, reps=1)


@dataclass
class LateOwner:
    late_ms: list[float]
    """Enqueue->start of each of B's jobs added behind A's burst."""
    idle_ms: list[float]
    """The same adds on an idle queue: what a job waits when nobody is ahead of it."""
    backlog: int
    """A's jobs still waiting when B added its first."""
    rate: float
    """Jobs/s the worker drained A's burst at: backlog / rate is what B would wait in FIFO."""


@dataclass
class FairResults:
    plan: FairPlan
    late: list[LateOwner] = field(default_factory=list)
    drains: dict[str, list[phases.DrainResult]] = field(default_factory=dict)
    baseline_rev: str | None = None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def _settled(redis: Redis, keys: QueueKeys, timeout_s: float) -> float:
    """Waits until nothing waits or runs; returns when that was first seen (time.time())."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await redis.zcard(keys.wait) + await redis.zcard(keys.active) == 0:
            return time.time()
        await asyncio.sleep(0.01)
    raise RuntimeError("the fairness worker did not drain the queue in time")


async def late_owner(server: RedisServer, plan: FairPlan) -> LateOwner:
    server.control().flushall()
    redis = Redis.from_url(server.url)
    keys = QueueKeys(PREFIX, QUEUE)
    a, b = (Queue(redis, QUEUE, prefix=PREFIX, owner=o) for o in ("org-a", "org-b"))
    try:
        with WorkerGroup(FairSpec(server.url, plan.concurrency), 1, fair_worker_process) as group:
            group.go()
            await asyncio.sleep(1.0)  # past start-up: the worker blocks, idle
            t0 = time.time()
            for start in range(0, plan.burst, BULK_BATCH):
                end = min(plan.burst, start + BULK_BATCH)
                await a.add_bulk([(payload(n), FORGE_OPTIONS) for n in range(start, end)])
            backlog = await redis.zcard(keys.wait)
            for i in range(plan.late):
                await b.add(payload(-1 - i), FORGE_OPTIONS)
            drained = await _settled(redis, keys, 60 + plan.burst / 100)
            for i in range(plan.late):
                await b.add(payload(-1001 - i), FORGE_OPTIONS)
            await _settled(redis, keys, 30)
            group.stop()
            (report,) = group.results(timeout_s=30)
    finally:
        await redis.aclose()
    watched = report["watched"]
    if len(watched) != 2 * plan.late or report["jobs"] != plan.burst + 2 * plan.late:
        raise RuntimeError(f"fairness worker ran {report['jobs']} jobs, watched {len(watched)}")
    return LateOwner(
        late_ms=[watched[-1 - i] * 1000 for i in range(plan.late)],
        idle_ms=[watched[-1001 - i] * 1000 for i in range(plan.late)],
        backlog=backlog,
        rate=(plan.burst + plan.late) / (drained - t0),
    )


def owned_filler(owners: int) -> Callable[[System, str, int], Awaitable[None]]:
    """Fills the queue with `jobs` split evenly over `owners` organisations, each adding its
    share in bulk (as an organisation's burst arrives), one organisation after another."""

    async def fill(system: System, url: str, jobs: int) -> None:
        redis = Redis.from_url(url)
        share = jobs // owners
        try:
            for i in range(owners):
                owned = Queue(redis, QUEUE, prefix=PREFIX, owner=f"org-{i:04d}")
                for start in range(0, share, BULK_BATCH):
                    count = min(share, start + BULK_BATCH) - start
                    await owned.add_bulk([(payload(n), FORGE_OPTIONS) for n in range(count)])
        finally:
            await redis.aclose()

    return fill


@contextlib.contextmanager
def job_layer_at(rev: str | None) -> Iterator[None]:
    """Worker processes started inside run the job layer (packages/queue) of git revision `rev`
    (None: this tree's): spawned workers take the parent's sys.path, so REV's copy goes first."""
    if rev is None:
        yield
        return
    with sources_at(HERE.parent, rev, ["packages/queue/src"]) as tree:
        src = str(tree / "packages" / "queue" / "src")
        sys.path.insert(0, src)
        try:
            yield
        finally:
            sys.path.remove(src)


async def drain_with(
    server: RedisServer, rev: str | None, procs: int, jobs: int, owners: int
) -> phases.DrainResult:
    """One drain of the main bench's kind; unowned jobs when `owners` is 0."""
    filler = owned_filler(owners) if owners else phases.fill
    with job_layer_at(rev):
        result = await phases.drain(server, FORGE, jobs, procs, filler=filler)
    # Only this tree's claim moves the fair order's clock: proof of which code the workers ran.
    clock = server.control().hget(QueueKeys(PREFIX, QUEUE).fair, "clock:0")
    clocked = int(clock or 0) > 0
    if clocked != (rev is None):
        raise RuntimeError(f"workers did not run the job layer of {rev or 'this tree'}")
    return result


def _variants(plan: FairPlan, baseline_rev: str | None) -> dict[str, tuple[str | None, int, int]]:
    """Label -> (revision, processes, owners)."""
    out: dict[str, tuple[str | None, int, int]] = {
        "unowned, 1 proc": (None, 1, 0),
        "1 owner, 1 proc": (None, 1, 1),
        f"{plan.owners:,} owners, 1 proc": (None, 1, plan.owners),
    }
    if baseline_rev:
        out["unowned, 1 proc, baseline"] = (baseline_rev, 1, 0)
        out["unowned, 2 proc"] = (None, 2, 0)
        out["unowned, 2 proc, baseline"] = (baseline_rev, 2, 0)
    return out


async def measure(server: RedisServer, plan: FairPlan, baseline_rev: str | None) -> FairResults:
    """Every phase once per rep, interleaved (the drains in reverse order every other rep), so
    load from elsewhere weighs on all alike."""
    if baseline_rev:
        commit, subject = commit_of(HERE.parent, baseline_rev)
        log(f"baseline: {baseline_rev} = {commit[:7]} {subject}")
        baseline_rev = commit
    results = FairResults(plan=plan, baseline_rev=baseline_rev)
    variants = _variants(plan, baseline_rev)
    for rep in range(1, plan.reps + 1):
        log(f"late owner: {plan.burst:,} jobs of org A, then {plan.late} of org B, run {rep}")
        late = await late_owner(server, plan)
        log(
            f"  B's jobs started after {max(late.late_ms):.1f} ms at most "
            f"(idle queue: {max(late.idle_ms):.1f} ms); {late.backlog:,} of A's waited ahead"
        )
        results.late.append(late)
        order = list(variants.items())
        for label, (rev, procs, owners) in order if rep % 2 else order[::-1]:
            log(f"drain {label}, {plan.drain_jobs:,} jobs, run {rep}")
            res = await drain_with(server, rev, procs, plan.drain_jobs, owners)
            log(f"  {res.rate:,.0f} jobs/s, Redis CPU {res.redis_cpu_per_job_us:.0f} us/job")
            results.drains.setdefault(label, []).append(res)
    return results


def _median_rate(runs: list[phases.DrainResult]) -> float:
    return statistics.median(r.rate for r in runs)


def _median(runs: list[phases.DrainResult], get: Callable[[phases.DrainResult], float]) -> float:
    return statistics.median(get(r) for r in runs)


def _commands(r: phases.DrainResult) -> float:
    return sum(r.stats_per_job.values())


def section(res: FairResults, notes: list[str]) -> str:
    plan = res.plan
    late_max = statistics.median(max(x.late_ms) for x in res.late)
    late_p50 = statistics.median(statistics.median(x.late_ms) for x in res.late)
    idle_max = statistics.median(max(x.idle_ms) for x in res.late)
    backlog = statistics.median(x.backlog for x in res.late)
    rate = statistics.median(x.rate for x in res.late)
    many = f"{plan.owners:,} owners, 1 proc"
    owners_ratio = _median_rate(res.drains[many]) / _median_rate(res.drains["1 owner, 1 proc"])
    rows = [
        "| phase | jobs | jobs/s per run | worker CPU us/job | Redis CPU us/job | "
        "commands Redis ran per job |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in res.drains.items():
        rates = ", ".join(f"{r.rate:,.0f}" for r in runs)
        rows.append(
            f"| drain {label} | {runs[0].jobs:,} | {rates} | "
            f"{_median(runs, lambda r: r.cpu_per_job_us):.0f} | "
            f"{_median(runs, lambda r: r.redis_cpu_per_job_us):.0f} | {_commands(runs[0]):.2f} |"
        )
    late_rows = "\n".join(
        f"| {i + 1} | {x.backlog:,} | {max(x.late_ms):.1f} | {statistics.median(x.late_ms):.1f} | "
        f"{max(x.idle_ms):.1f} | {x.rate:,.0f} | {x.backlog / x.rate * 1000:,.0f} |"
        for i, x in enumerate(res.late)
    )
    targets = [
        (
            f"Late owner: B's {plan.late} jobs start within {LATE_TARGET_MS:.0f} ms "
            f"behind A's {plan.burst:,} (max of B's, median of runs)",
            f"{late_max:.1f} ms",
            late_max <= LATE_TARGET_MS,
        ),
        (
            f"Drain, {plan.owners:,} owners >= {OWNERS_TARGET}x one owner (median jobs/s)",
            f"{owners_ratio:.2f}x",
            owners_ratio >= OWNERS_TARGET,
        ),
    ]
    target_rows = "\n".join(
        f"| {name} | {value} | {'PASS' if ok else '**FAIL**'} |" for name, value, ok in targets
    )
    baseline = ""
    if res.baseline_rev:
        lines = []
        for procs in (1, 2):
            ours, theirs = (res.drains[f"unowned, {procs} proc{s}"] for s in ("", ", baseline"))
            lines.append(
                f"| {procs} | {_median_rate(ours):,.0f} | {_median_rate(theirs):,.0f} | "
                f"{_median_rate(ours) / _median_rate(theirs):.2f}x | "
                f"{_median(ours, lambda r: r.cpu_per_job_us):.0f} / "
                f"{_median(theirs, lambda r: r.cpu_per_job_us):.0f} | "
                f"{_median(ours, lambda r: r.redis_cpu_per_job_us):.0f} / "
                f"{_median(theirs, lambda r: r.redis_cpu_per_job_us):.0f} | "
                f"{_commands(ours[0]):.2f} / {_commands(theirs[0]):.2f} |"
            )
        baseline = (
            f"\nThe main bench's drain (unowned jobs, {plan.drain_jobs:,}) with this tree's job "
            f"layer against `{res.baseline_rev[:7]}`'s, workers of both in this run (medians):\n\n"
            "| worker processes | this tree (jobs/s) | baseline (jobs/s) | ratio | worker CPU "
            "us/job, this / baseline | Redis CPU us/job, this / baseline | commands Redis ran "
            "per job, this / baseline |\n"
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(lines) + "\n\n"
            "On a machine shared with other work the jobs/s of one drain move by tens of percent "
            "from run to run (every run is in the table above): read the ratio with that spread. "
            "Commands Redis ran per job are exact and do not move with load.\n"
        )
    machine_notes = "\n".join(f"- {n}" for n in notes)
    return f"""{BEGIN}
## Per-organisation fairness (issue 15, target 2)

Written by `uv run python bench/fairness.py` (also run by `bench/run.py`). One dedicated Redis;
{plan.reps} run(s) of each phase, interleaved, medians judged.

| target | measured | result |
| --- | ---: | ---: |
{target_rows}

Late owner: one long-running worker process (`max_jobs` {plan.concurrency}, no-op handler, catalog
options), idle when org A adds {plan.burst:,} jobs in bulk ({BULK_BATCH} a call); right after, org B
adds {plan.late} one by one; enqueue->start is `time.time()` at the handler's start minus just
before the add. Then, with the queue drained, B adds {plan.late} more: the idle reference.
A FIFO queue would have started B's first job only after A's backlog, at the drain rate shown.

| run | A's jobs waiting at B's add | B: max (ms) | B: median (ms) | idle queue: max (ms) | drain rate (jobs/s) | FIFO wait for B (ms, estimated) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{late_rows}

Medians: B's max {late_max:.1f} ms, median {late_p50:.1f} ms; idle max {idle_max:.1f} ms;
{backlog:,.0f} jobs ahead at B's add, {rate:,.0f} jobs/s.

Drains as in the main bench (`max_jobs` 100, burst workers released together, catalog options),
the jobs added by one organisation, or split over {plan.owners:,} organisations that each add
their share in bulk, one after another (so every claim takes jobs of many owners in turn):

{chr(10).join(rows)}
{baseline}
{machine_notes}
- Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC
{END}
"""


def notes() -> list[str]:
    return [
        f"CPU: {machine.cpu_model()}",
        f"Load average (1/5/15 min): {machine.load_average()}",
        f"Job layer as of {machine.job_layer_revision(HERE.parent)}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts, one run")
    parser.add_argument("--reps", type=int, help="runs of each phase (median kept)")
    parser.add_argument(
        "--baseline-rev", help="also drain with this git revision's job layer (e.g. main)"
    )
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.reps:
        plan = FairPlan(**{**plan.__dict__, "reps": args.reps})
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    counters.install()
    with dedicated_redis() as server:
        results = asyncio.run(measure(server, plan, args.baseline_rev))
    text = section(results, notes())
    print(text)
    if not args.no_write:
        write_section(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
