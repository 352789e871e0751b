"""The queue layer's exceptions: one tree, so callers can map them to HTTP answers in one place."""


class QueueError(Exception):
    """Base of everything the job layer raises on purpose."""


class UnrecoverableError(QueueError):
    """Raised by a handler: fail the job now, whatever attempts remain."""


class JobNotFoundError(QueueError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")
        self.job_id = job_id


class InvalidJobStateError(QueueError):
    """The operation does not apply to the job's current state (retrying an active job, ...)."""

    def __init__(self, job_id: str, state: str, wanted: str) -> None:
        super().__init__(f"job {job_id!r} is {state}; this needs it {wanted}")
        self.job_id = job_id
        self.state = state


class PayloadError(QueueError):
    """The job's stored payload does not decode or validate: never run, failed with this reason."""


class JobIdInUseError(QueueError):
    """An idempotent add named a job id that already belongs to another queue."""

    def __init__(self, job_id: str, queue: str) -> None:
        super().__init__(f"job id {job_id!r} is already used by queue {queue!r}")
        self.job_id = job_id
        self.queue = queue


class AmbiguousJobIdError(QueueError):
    """A lookup by id alone found the id in several queues: on a Redis Cluster a custom job id is
    unique per (owner, queue) only, so the caller must name the queue (never guessed)."""

    def __init__(self, job_id: str, queues: list[str]) -> None:
        super().__init__(
            f"job id {job_id!r} names jobs in queues {', '.join(queues)}: name the queue"
        )
        self.job_id = job_id
        self.queues = queues


class PayloadTooLargeError(QueueError):
    """A job's serialised data is over the queue's `max_payload_bytes`: nothing was written."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"job data is {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class JobFailedError(QueueError):
    """`Queue.wait`: the job ended failed; `reason` is its failed_reason."""

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id!r} failed: {reason}")
        self.job_id = job_id
        self.reason = reason


class ResultTooLargeError(QueueError):
    """A wait for the result of a job removed as it completed: its result was over the size a
    `completed` event carries (EVENTS_RESULT_MAX_BYTES), so it is kept nowhere. Keep such jobs
    (remove_on_complete) or make the result smaller to read it."""

    def __init__(self, job_id: str, size: int) -> None:
        super().__init__(
            f"job {job_id!r} completed and was removed on completion; its result ({size} bytes) "
            "was too large to carry in its completed event, so it was not kept"
        )
        self.job_id = job_id
        self.size = size


class WaitTimeoutError(QueueError, TimeoutError):
    """`Queue.wait`: the job had not finished when the timeout ran out; it may still finish."""

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"job {job_id!r} still {state} when the wait ended")
        self.job_id = job_id
        self.state = state


class RateLimited(QueueError):
    """Raised by a handler when the remote side says to slow down: the job goes back to waiting
    without spending an attempt, and no worker starts a job of its queue for `delay_ms`."""

    def __init__(self, delay_ms: int) -> None:
        if not 1 <= delay_ms <= 24 * 3600 * 1000:
            raise ValueError(f"delay_ms must be between 1 ms and a day, not {delay_ms}")
        super().__init__(f"rate limited by the remote side for {delay_ms} ms")
        self.delay_ms = delay_ms
