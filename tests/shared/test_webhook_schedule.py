"""The retry schedule: the default runs for days, and a delivery's job gets one attempt per entry
plus the first, each retry waiting exactly its entry (the schedule ends it, not an expiry)."""

from forgestack_shared.catalog import webhook_job_options
from forgestack_shared.settings import Settings


def test_the_default_schedule_spans_days(settings: Settings) -> None:
    schedule = settings.webhook_retry_schedule
    assert schedule[0] <= 10, "the first retry comes within seconds"
    assert sum(schedule) > 3 * 86400


def test_one_attempt_per_entry_plus_the_first() -> None:
    options = webhook_job_options([5, 300, 86400], "webhook-delivery:x")
    assert options.attempts == 4 and options.job_id == "webhook-delivery:x"
    assert options.backoff is not None
    assert [options.backoff.delay_for(n) for n in (1, 2, 3)] == [5_000, 300_000, 86_400_000]
