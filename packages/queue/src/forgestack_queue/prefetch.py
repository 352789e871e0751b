"""The prefetch buffer: jobs a busy worker has already claimed, so that a slot whose attempt ends
starts its next job at once instead of waiting for the outcome write that claims one (finish and
fetch next). The write that records the ended attempt refills the buffer in the background.

Without it, slots that end together wait for Redis together: the write in flight must return
before the next one goes out, so with 100 slots of 10 ms jobs each slot turned over every ~18 ms.

A buffered job is claimed like a running one (active in Redis, its lease renewed, counted by every
concurrency and rate limit), but it does not run yet, and no other worker can take it. So the
buffer is bounded twice:
- by what the worker gets through while an outcome waits for its write: MARGIN x (attempts
  ending per second) x (time from an outcome's submit to its write's return, which includes
  waiting behind the write in flight). A buffered job therefore waits a few times as long as a
  slot without one would have waited for its next job (a few ms for 10 ms jobs); a worker whose
  jobs take seconds buffers nothing and behaves as before, and its idle peers can take what is
  waiting;
- by `limit` (the worker's concurrency by default): a higher-priority job added later waits
  behind at most one buffered job per slot.
It only fills while every slot is busy: the worker's claims start jobs in free slots first, and
buffer only what they got beyond them. Slots take buffered jobs oldest first, so claim order
(priority, then owners in turn, then FIFO) holds.

Its start: a buffered job's timeout starts when it runs; so do the wait metrics, and its recorded
start (`processed_at`, the history's start entry) moves to when it ran once its outcome is
written (finish.lua). Until then its record shows the claim as its start."""

from collections import deque
from collections.abc import Callable, Iterator
from time import perf_counter

from .runner import ClaimedJob

RATE_WINDOW_S = 0.1
"""How often the rate of ended attempts is re-estimated."""
MARGIN = 4.0
"""The buffer covers this many times the ends expected while an outcome waits for its write:
attempts end in bursts (slots started together end together), not at the average rate."""
SHELF_LIFE_S = 0.1
"""The least time a job stays buffered before it is released back to waiting (attempt not
spent); more when writes are slow (`shelf_life`). A buffer filled while short jobs ended fast
would otherwise hold its jobs behind long ones that followed, out of reach of idle peers, and
past an operator's pause."""
SHELF_WRITES = 10
"""...or this many outcome write waits, whichever is longer: in steady use a buffered job starts
within a few (MARGIN) of them, so only a buffer that outlived its need reaches its shelf life."""


class Prefetch:
    def __init__(self, limit: int) -> None:
        """`limit`: the most jobs buffered (0: no prefetch)."""
        self.limit = max(0, limit)
        self._jobs: deque[tuple[ClaimedJob, float]] = deque()
        self.topping = 0
        """Buffer places an outcome write in flight is claiming jobs for."""
        self._ends = 0
        self._window_start = perf_counter()
        self._rate = 0.0
        self._write_s = 0.0

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[ClaimedJob]:
        return (job for job, _ in self._jobs)

    def ended(self) -> None:
        """An attempt ended: feeds the rate estimate."""
        self._ends += 1
        now = perf_counter()
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW_S:
            self._rate = (self._rate + self._ends / elapsed) / 2
            self._ends, self._window_start = 0, now

    def wrote(self, seconds: float) -> None:
        """An outcome waited this long for its write: feeds the estimate of the wait."""
        self._write_s = seconds if not self._write_s else (self._write_s * 3 + seconds) / 4

    def target(self) -> int:
        """How many jobs the buffer should hold now."""
        if not self.limit:
            return 0
        rate = self._rate
        idle = perf_counter() - self._window_start
        if idle >= 2 * RATE_WINDOW_S:
            # Nothing (or little) ended for a while: the last estimate is stale.
            rate = min(rate, self._ends / idle)
        return min(self.limit, int(rate * self._write_s * MARGIN))

    def room(self) -> int:
        """Jobs to claim for the buffer, beyond those it holds or a write is claiming."""
        return max(0, self.target() - len(self._jobs) - self.topping)

    def put(self, job: ClaimedJob) -> None:
        self._jobs.append((job, perf_counter()))

    def take(self) -> tuple[ClaimedJob, int] | None:
        """The oldest buffered job and how long it waited here (ms), or None."""
        if not self._jobs:
            return None
        job, since = self._jobs.popleft()
        return job, int((perf_counter() - since) * 1000)

    def take_all(self) -> list[ClaimedJob]:
        """Empties the buffer (the worker stops or pauses: these go back to waiting)."""
        jobs = [job for job, _ in self._jobs]
        self._jobs.clear()
        return jobs

    def shelf_life(self) -> float:
        """Seconds a job may stay buffered (SHELF_LIFE_S, SHELF_WRITES)."""
        return max(SHELF_LIFE_S, SHELF_WRITES * self._write_s)

    def expiring_in(self) -> float | None:
        """Seconds until the oldest buffered job reaches its shelf life (None: buffer empty)."""
        if not self._jobs:
            return None
        return max(0.0, self._jobs[0][1] + self.shelf_life() - perf_counter())

    def expired(self) -> list[ClaimedJob]:
        """Takes out the jobs that reached their shelf life (the oldest are first in line)."""
        deadline = perf_counter() - self.shelf_life()
        gone = []
        while self._jobs and self._jobs[0][1] <= deadline:
            gone.append(self._jobs.popleft()[0])
        return gone

    def remove(self, job_id: str) -> list[ClaimedJob]:
        """Takes out the buffered jobs with this id (an operator cancelled it)."""
        return self._take_where(lambda job: job.id == job_id)

    def remove_lost(self, queue: str, held: set[tuple[str, str]]) -> list[ClaimedJob]:
        """Takes out the buffered jobs of `queue` claimed as these (id, token) pairs (their
        leases lapsed); a fresh claim of the same id keeps its place."""
        return self._take_where(lambda job: job.queue == queue and (job.id, job.token) in held)

    def take_queue(self, queue: str) -> list[ClaimedJob]:
        """Takes out the buffered jobs of `queue` (a handler's RateLimited holds it)."""
        return self._take_where(lambda job: job.queue == queue)

    def _take_where(self, match: Callable[[ClaimedJob], bool]) -> list[ClaimedJob]:
        """Takes out the buffered jobs `match` picks; the others keep their order."""
        gone = [job for job, _ in self._jobs if match(job)]
        if gone:
            self._jobs = deque(entry for entry in self._jobs if not match(entry[0]))
        return gone
