import random

import pytest
from forgestack_queue.options import Backoff, JobOptions, KeepJobs, retention_limits
from pydantic import ValidationError


def test_exponential_backoff_doubles_from_the_base_delay() -> None:
    backoff = Backoff(type="exponential", delay=1000)
    assert [backoff.delay_for(n) for n in (1, 2, 3)] == [1000, 2000, 4000]


def test_fixed_backoff_repeats_the_delay() -> None:
    assert [Backoff(type="fixed", delay=250).delay_for(n) for n in (1, 2, 5)] == [250, 250, 250]


def test_schedule_is_followed_then_its_last_entry_repeats() -> None:
    backoff = Backoff(schedule=[5_000, 300_000, 1_800_000])
    assert [backoff.delay_for(n) for n in (1, 2, 3, 4)] == [5_000, 300_000, 1_800_000, 1_800_000]


def test_jitter_only_shortens_within_its_fraction() -> None:
    backoff = Backoff(type="fixed", delay=1000, jitter=0.5)
    rng = random.Random(7)
    delays = {backoff.delay_for(1, rng) for _ in range(200)}
    assert min(delays) >= 500
    assert max(delays) <= 1000
    assert len(delays) > 10


def test_per_call_options_override_only_what_they_set() -> None:
    defaults = JobOptions(attempts=5, backoff=Backoff(delay=10), priority=3)
    merged = JobOptions(priority=1).merged_over(defaults)
    assert merged.attempts == 5
    assert merged.backoff == Backoff(delay=10)
    assert merged.priority == 1


@pytest.mark.parametrize(
    ("rule", "limits"),
    [
        (True, (0, -1)),
        (False, (-1, -1)),
        (25, (25, -1)),
        (KeepJobs(age=60), (-1, 60)),
        (KeepJobs(age=60, count=5), (5, 60)),
    ],
)
def test_retention_rules_map_to_count_and_age(rule: object, limits: tuple[int, int]) -> None:
    assert retention_limits(rule) == limits  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        {"attempts": 0},
        {"delay": -1},
        {"priority": -1},
        {"priority": 2**21},
        {"job_id": "has space"},
        {"job_id": "12345"},
        {"timeout": 0},
        {"unknown": 1},
        {"backoff": {"type": "linear"}},
    ],
)
def test_invalid_options_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(bad)


def test_options_round_trip_as_json() -> None:
    opts = JobOptions(
        attempts=3,
        backoff=Backoff(schedule=[1, 2]),
        remove_on_complete=KeepJobs(count=3),
        remove_on_fail=10,
        job_id="order-1",
    )
    assert JobOptions.model_validate_json(opts.model_dump_json()) == opts
