"""`new-job --cron "<expr>"`: a five-field cron expression as arq `cron(...)` arguments, and the
producer coroutine that adds one job per tick to the new queue."""

from .job_edits import CRON, AnchorError, insert_after, insert_before
from .job_templates import TYPES, Fields, JobNames

# (arq keyword, lowest, highest) for minute, hour, day of month, month, day of week.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


class CronError(ValueError):
    """An expression this parser does not accept, with the part at fault."""


def _part(text: str, low: int, high: int) -> set[int]:
    span, _, step_text = text.partition("/")
    step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
    if step_text and step is None:
        raise CronError(f"step {step_text!r} is not a positive number")
    if span == "*":
        start, end = low, high
    elif "-" in span:
        first, _, last = span.partition("-")
        if not (first.isdigit() and last.isdigit()):
            raise CronError(f"{span!r} is not a range")
        start, end = int(first), int(last)
    elif span.isdigit():
        start = int(span)
        end = high if step else start
    else:
        raise CronError(f"{span!r} is not a number, range or *")
    if not low <= start <= end <= high:
        raise CronError(f"{text!r} is outside {low}-{high}")
    return set(range(start, end + 1, step or 1))


def cron_arguments(expr: str) -> dict[str, set[int]]:
    """Fields left as `*` are omitted (arq's any); cron's Sunday (0 or 7) is arq's 6."""
    parts = expr.split()
    if len(parts) != len(FIELDS):
        raise CronError(f"{expr!r} needs five fields: minute hour day month weekday")
    arguments: dict[str, set[int]] = {}
    for text, (name, low, high) in zip(parts, FIELDS, strict=True):
        if text == "*":
            continue
        values = set().union(*(_part(item, low, high) for item in text.split(",")))
        if name == "weekday":
            values = {(value + 6) % 7 for value in values}
        arguments[name] = values
    return arguments


def _literal(values: set[int]) -> str:
    return "{" + ", ".join(str(v) for v in sorted(values)) + "}"


def edit_cron(text: str, n: JobNames, data: Fields, expr: str) -> str:
    try:
        arguments = cron_arguments(expr)
    except CronError as exc:
        raise AnchorError(f"--cron: {exc}") from None
    values = ", ".join(f"{name}={TYPES[t][2]}" for name, t in data)
    producer = f'''

async def enqueue_{n.module}(ctx: dict[str, Any]) -> str:
    """The `{n.queue}` producer: one job a tick, with the catalog's defaults.
    Schedule (cron): {expr}"""
    queue = Queue(ctx["redis"], {n.const}.name.value, prefix=_resources(ctx).settings.queue_prefix)
    data = {n.model}Data({values})
    return (await queue.add(data.model_dump(mode="json"), {n.const}.defaults)).id
'''
    schedule = "".join(f", {name}={_literal(v)}" for name, v in arguments.items())
    entry = f'    cron(enqueue_{n.module}{schedule}, name="enqueue-{n.queue}"),\n'
    imports = (
        "from forgestack_queue.producer import Queue\n"
        f"from forgestack_shared.catalog import {n.const}\n"
        f"from forgestack_shared.jobs.{n.module} import {n.model}Data\n"
    )
    if any(t == "datetime" for _, t in data):
        imports += "from datetime import UTC, datetime\n"
    text = insert_after(text, "from forgestack_shared.catalog import", imports, CRON)
    text = insert_before(text, "\n\nCRON_JOBS: list[CronJob]", producer, CRON)
    return insert_before(text, "]\n", entry, CRON, last=True)
