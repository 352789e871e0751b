"""Turns the phase results into the console table and bench/RESULTS.md: figures, ratios against
tuned raw arq, PASS/FAIL per target of issue 6, command breakdowns, the MONITOR trace."""

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TypeVar

from .enqueue import EnqueueResult
from .phases import DrainResult, ServeResult
from .systems import ARQ_DEFAULT, ARQ_TUNED, BULK_BATCH, FORGE, FORGE_OPTIONS, System

T = TypeVar("T")
CPUS = os.cpu_count() or 1
COLUMNS: tuple[System, ...] = (ARQ_DEFAULT, ARQ_TUNED, FORGE)


def median_of(runs: Sequence[T]) -> T:
    """A run whose every number is the median of that number over the runs (mean of the middle
    two for an even count). Command breakdowns are the same in every run and come from the first."""
    first = runs[0]
    if len(runs) == 1:
        return first
    numbers = {
        f.name: statistics.median(getattr(r, f.name) for r in runs)
        for f in fields(first)  # type: ignore[arg-type]
        if isinstance(getattr(first, f.name), float)
    }
    return replace(first, **numbers)  # type: ignore[type-var]


@dataclass
class Results:
    enqueue: dict[str, list[EnqueueResult]] = field(default_factory=dict)
    """By producer kind: "arq" (one client for both arq settings) and "forge"."""
    drain: dict[tuple[str, int], list[DrainResult]] = field(default_factory=dict)
    serve: dict[str, ServeResult] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)
    ping_before: tuple[float, float] = (0.0, 0.0)
    ping_after: tuple[float, float] = (0.0, 0.0)

    def enq(self, system: System) -> EnqueueResult:
        return median_of(self.enqueue[system.kind])

    def bulk(self, system: System) -> float:
        return self.enq(system).rate_bulk

    def best_rate(self, system: System, procs: int) -> float:
        return max(run.rate for run in self.drain[(system.key, procs)])

    def drained(self, system: System, procs: int) -> DrainResult:
        return median_of(self.drain[(system.key, procs)])


@dataclass(frozen=True)
class Target:
    text: str
    measured: str
    passed: bool | None
    """None: a target a later issue replaced (the row stays, as a figure, with where its
    replacement is measured)."""

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "replaced: issue 15, point 3 (the scaling section)"
        return "PASS" if self.passed else "FAIL"


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def targets(r: Results) -> list[Target]:
    f1, a1 = r.drained(FORGE, 1), r.drained(ARQ_TUNED, 1)
    f2 = r.drained(FORGE, 2)
    lat = r.serve[FORGE.key]
    arq_one = r.enq(ARQ_TUNED).rate_one
    fe = r.enq(FORGE)
    drain_x = _ratio(f1.rate, a1.rate)
    scale_x = _ratio(f2.rate, f1.rate)
    enq_x = _ratio(fe.rate_one, arq_one)
    bulk_x = _ratio(r.bulk(FORGE), arq_one)
    cpu_x = _ratio(f1.cpu_per_job_us, a1.cpu_per_job_us)
    return [
        Target("Drain, 1 worker process: >= 1.5x tuned raw arq", f"{drain_x:.2f}x", drain_x >= 1.5),
        # On 2 CPUs shared with Redis no worker can show it; issue 15 measures scaling instead
        # with I/O-bound drains and the no-op drain against the machine's CPU ceiling.
        Target("Drain, 2 processes: >= 1.7x our 1 process", f"{scale_x:.2f}x", None),
        Target(
            "Enqueue->start p50 <= 2 ms (50 jobs/s, idle worker)",
            f"{lat.p50_ms:.2f} ms",
            lat.p50_ms <= 2,
        ),
        Target("Enqueue->start p99 <= 5 ms", f"{lat.p99_ms:.2f} ms", lat.p99_ms <= 5),
        Target(
            "Idle worker: <= ~10 commands/s sent to Redis",
            f"{lat.idle_sent_per_s:.1f}/s",
            lat.idle_sent_per_s <= 10,
        ),
        Target("Enqueue one by one: >= 1.3x raw arq", f"{enq_x:.2f}x", enq_x >= 1.3),
        Target("Bulk add: >= 3x raw arq one by one", f"{bulk_x:.2f}x", bulk_x >= 3),
        Target(
            "Round trips per enqueue <= 2",
            f"{fe.round_trips_per_job:.2f}",
            fe.round_trips_per_job <= 2,
        ),
        Target(
            "Round trips per job run <= 3 (1-process drain)",
            f"{f1.round_trips_per_job:.2f}",
            f1.round_trips_per_job <= 3,
        ),
        Target("Worker CPU per job <= 60% of tuned raw arq", f"{cpu_x:.0%}", cpu_x <= 0.6),
    ]


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def figure_rows(r: Results) -> list[tuple[str, list[str], str]]:
    """(metric, one cell per column, ForgeStack / tuned arq)."""
    rows: list[tuple[str, list[str], str]] = []

    def add(name: str, get: Callable[[System], float], digits: int = 0, ratio: bool = True) -> None:
        values = [get(s) for s in COLUMNS]
        x = f"{_ratio(values[2], values[1]):.2f}x" if ratio else ""
        rows.append((name, [_fmt(v, digits) for v in values], x))

    add("Enqueue one by one (jobs/s) [a]", lambda s: r.enq(s).rate_one)
    add("Enqueue in bulk (jobs/s) [b]", r.bulk)
    add("Round trips per enqueue", lambda s: r.enq(s).round_trips_per_job, 2)
    add("Commands sent per enqueue", lambda s: r.enq(s).commands_sent_per_job, 2)
    add("Commands Redis ran per enqueue [c]", lambda s: sum(r.enq(s).stats_per_job.values()), 2)
    add("Drain, 1 process (jobs/s)", lambda s: r.drained(s, 1).rate)
    add("Drain, 2 processes (jobs/s)", lambda s: r.drained(s, 2).rate)
    add(
        "2 processes / 1 process",
        lambda s: _ratio(r.drained(s, 2).rate, r.drained(s, 1).rate),
        2,
        False,
    )
    add("Drain, 1 process, best run (jobs/s) [f]", lambda s: r.best_rate(s, 1))
    add("Drain, 2 processes, best run (jobs/s) [f]", lambda s: r.best_rate(s, 2))
    add("Round trips per job run (1 process)", lambda s: r.drained(s, 1).round_trips_per_job, 2)
    add("Commands sent per job run", lambda s: r.drained(s, 1).commands_sent_per_job, 2)
    add(
        "Commands Redis ran per job run [c]",
        lambda s: sum(r.drained(s, 1).stats_per_job.values()),
        2,
    )
    add("Round trips per job run (2 processes)", lambda s: r.drained(s, 2).round_trips_per_job, 2)
    add("Worker CPU per job, 1 process (us)", lambda s: r.drained(s, 1).cpu_per_job_us)
    add("Worker CPU per job, 2 processes (us)", lambda s: r.drained(s, 2).cpu_per_job_us)
    add("Redis CPU per job, 1 process (us)", lambda s: r.drained(s, 1).redis_cpu_per_job_us)
    add("Redis CPU per job, 2 processes (us)", lambda s: r.drained(s, 2).redis_cpu_per_job_us)
    add(
        f"CPU-bound ceiling on {CPUS} CPUs (jobs/s) [d]",
        lambda s: (
            CPUS * 1e6 / (r.drained(s, 2).cpu_per_job_us + r.drained(s, 2).redis_cpu_per_job_us)
        ),
    )
    add(
        "CPUs busy with other work during 1-proc drain",
        lambda s: r.drained(s, 1).other_cores,
        2,
        False,
    )
    add(
        "CPUs busy with other work during 2-proc drain",
        lambda s: r.drained(s, 2).other_cores,
        2,
        False,
    )
    add("Enqueue->start p50 (ms)", lambda s: r.serve[s.key].p50_ms, 2)
    add("Enqueue->start p95 (ms)", lambda s: r.serve[s.key].p95_ms, 2)
    add("Enqueue->start p99 (ms)", lambda s: r.serve[s.key].p99_ms, 2)
    add("Enqueue->start max (ms)", lambda s: r.serve[s.key].max_ms, 2)
    add(
        "Worker round trips per job at 50 jobs/s [e]",
        lambda s: r.serve[s.key].worker_round_trips_per_job,
        2,
    )
    add("Idle worker: commands sent/s", lambda s: r.serve[s.key].idle_sent_per_s, 1)
    add("Idle worker: commands Redis ran/s [c]", lambda s: r.serve[s.key].idle_run_per_s, 1)
    return rows


def console_table(r: Results) -> str:
    header = ["metric", *(s.label for s in COLUMNS), "ours / tuned"]
    body = [[name, *cells, x] for name, cells, x in figure_rows(r)]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    for row in body:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines.append("")
    lines += [f"{t.verdict}  {t.text}: {t.measured}" for t in targets(r)]
    return "\n".join(lines)


def _md_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1
) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _breakdown(columns: Sequence[tuple[str, dict[str, float]]]) -> list[str]:
    names = sorted({n for _, stats in columns for n in stats})
    rows = [
        [f"`{n}`", *(f"{stats.get(n, 0):.3f}" if stats.get(n) else "" for _, stats in columns)]
        for n in names
    ]
    rows.append(["**total**", *(f"**{sum(stats.values()):.2f}**" for _, stats in columns)])
    return _md_table(["command", *(label for label, _ in columns)], rows)


def markdown(r: Results, *, title_note: str, machine: list[str], plan: list[str]) -> str:
    out = ["# Job layer benchmark: raw arq against ForgeStack", "", title_note, ""]
    out += ["## Machine", "", *(f"- {m}" for m in machine), ""]
    out += ["## What runs", "", *(f"- {p}" for p in plan), ""]
    out += ["## Figures", ""]
    out += _md_table(
        ["metric", *(s.label for s in COLUMNS), "ours / tuned arq"],
        [[name, *cells, x] for name, cells, x in figure_rows(r)],
    )
    out += [
        "",
        "[a] Raw arq's producer is the same client for both worker settings (enqueue never touches the worker), "
        "so both arq columns show one measurement.",
        "",
        f"[b] arq has no bulk add: its best is `asyncio.gather` of `enqueue_job` calls, {BULK_BATCH} at a time; "
        f"ours is `add_bulk` with {BULK_BATCH} jobs per call.",
        "",
        "[c] INFO commandstats counts the commands a Lua script runs as well; the round trip for a script is "
        "one `EVALSHA`. Round trips and commands sent are counted in each client process (see README).",
        "",
        "[d] The machine's CPUs divided by worker plus Redis CPU per job (2-process drain): the rate "
        "no number of worker processes can pass here while Redis shares the machine. Other work on "
        "the machine (next rows: CPUs it kept busy during the drains) lowers what is left for the bench.",
        "",
        "[e] Everything the worker process sent during the latency phase, divided by the jobs: a worker "
        "that is mostly idle pays its wake-up and re-block per job, and a polling worker its polls.",
        "",
        "[f] Load from elsewhere only ever slows a run down, and a long drain (raw arq's take 30-100 s "
        "here) is more exposed to it than a short one: the best run is the other honest reading. "
        "Targets are judged on the medians.",
        "",
        "## Targets (issue 6)",
        "",
    ]
    out += _md_table(
        ["target", "measured", "result"],
        [
            [t.text, t.measured, "**FAIL**" if t.verdict == "FAIL" else t.verdict]
            for t in targets(r)
        ],
        right_from=1,
    )
    out += ["", "## Every run", ""]
    rows = []
    for (key, procs), runs in sorted(r.drain.items()):
        rows.append(
            [
                f"drain {key}, {procs} proc",
                f"{runs[0].jobs:,}",
                ", ".join(f"{x.rate:,.0f}" for x in runs),
                ", ".join(f"{x.cpu_per_job_us:,.0f}" for x in runs),
                ", ".join(f"{x.redis_cpu_per_job_us:,.0f}" for x in runs),
                ", ".join("/".join(map(str, x.per_proc_jobs)) for x in runs),
                ", ".join(f"{x.load_1min:.1f}" for x in runs),
                ", ".join(f"{x.other_cores:.2f}" for x in runs),
            ]
        )
    out += _md_table(
        [
            "phase",
            "jobs",
            "jobs/s per run",
            "worker CPU us/job",
            "Redis CPU us/job",
            "jobs per process",
            "load (1 min) at start",
            "CPUs busy with other work",
        ],
        rows,
    )
    out += [""]
    rows = [
        [
            f"enqueue {kind}",
            f"{runs[0].jobs:,}",
            ", ".join(f"{x.rate_one:,.0f}" for x in runs),
            ", ".join(f"{x.rate_bulk:,.0f}" for x in runs),
        ]
        for kind, runs in sorted(r.enqueue.items())
    ]
    out += _md_table(["phase", "jobs", "one by one, jobs/s per run", "bulk, jobs/s per run"], rows)
    out += [""]
    rows = [
        [
            s.label,
            f"{r.serve[s.key].sent}",
            f"{r.serve[s.key].started}",
            f"{r.serve[s.key].idle_s:g} s",
        ]
        for s in COLUMNS
    ]
    out += _md_table(["latency phase", "jobs sent", "jobs started", "idle window"], rows)
    out += ["", "## Commands Redis ran per enqueue (INFO commandstats / jobs, one by one)", ""]
    out += _breakdown(
        [("raw arq", r.enq(ARQ_TUNED).stats_per_job), ("ForgeStack", r.enq(FORGE).stats_per_job)]
    )
    out += ["", "## Commands Redis ran per job run (INFO commandstats / jobs, 1-process drain)", ""]
    out += _breakdown([(s.label, r.drained(s, 1).stats_per_job) for s in COLUMNS])
    out += ["", "## Commands of an idle worker (INFO commandstats, whole idle window)", ""]
    out += _breakdown(
        [(s.label, {k: float(v) for k, v in r.serve[s.key].idle_stats.items()}) for s in COLUMNS]
    )
    out += [
        "",
        "## MONITOR trace of one ForgeStack job, enqueue to completion",
        "",
        "An idle worker is already blocked on the queue's marker. Times from the producer's command; "
        "`(lua)` lines run inside the script call above them (no round trip). Long arguments are cut.",
        "",
        "```",
        *r.trace,
        "```",
        "",
    ]
    return "\n".join(out)


def forge_options_text() -> str:
    return FORGE_OPTIONS.model_dump_json(exclude_none=True)
