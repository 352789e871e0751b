"""Fixtures for the job layer's tests: a probe handler and a queue on the test's prefix."""

import pytest
from forgestack_queue.producer import Queue
from redis.asyncio import Redis

from tests.queue.probe import PROBE, Probe


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def queue(redis: Redis, queue_prefix: str) -> Queue:
    return Queue(redis, PROBE, prefix=queue_prefix)
