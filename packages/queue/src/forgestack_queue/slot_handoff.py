"""How a worker's slots pass from ended attempts to their next jobs. A slot whose attempt ends
takes the oldest buffered job at once (prefetch.py), or waits for the outcome write that stores its
attempt and claims its next job (finish and fetch next, outbox.py); each write's jobs then fill
free slots or the buffer. Claimed jobs that will not run here (their queue held, the worker
stopping or paused, past their shelf life, their lease lost, cancelled by an operator) go back
to waiting through here too.

A mixin of ForgeWorker rather than an object it owns: these steps run for every job, on the
worker's own slot counts and collections, where a helper object would add a lookup per step."""

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .attempts import HELD, attempt_key
from .job_logs import job_log
from .runner import ClaimedJob

if TYPE_CHECKING:
    from arq.worker import Worker as _Worker

    from .arq_intake import ArqIntake
    from .outbox import OutcomeWriter
    from .prefetch import Prefetch
else:
    _Worker = object


class SlotHandoff(_Worker):
    if TYPE_CHECKING:
        # The worker's state and steps this part uses (worker.py, attempts.py).
        claim_batch: int
        _prefetch: Prefetch
        _finishing: int
        _holding: set[str]
        _held: dict[str, float]
        _stopping: bool
        _written: int
        _intake: ArqIntake | None
        _outcomes: OutcomeWriter
        _slot_freed: asyncio.Event

        def _start(self, job: ClaimedJob, held_ms: int = 0) -> None: ...

    def _refill_wanted(self, freed: int) -> int:
        """Jobs to claim with outcomes that free `freed` places (slots, or buffer places their
        attempts emptied): one each while the worker claims, plus the buffer's room (it grows
        with the rate of ended attempts). Only those places: the loop's own claims fill the
        others, so the two never overbook."""
        if self._stopping or not self.allow_pick_jobs:
            return 0
        # Each part bounded by a claim batch: slots that end together would otherwise take the
        # whole batch, and the buffer would only grow through extra claims of the loop's.
        extra = min(self._prefetch.room(), self.claim_batch)
        self._prefetch.topping += extra
        return min(freed, self.claim_batch) + extra

    def _after_write(
        self, ended: list[ClaimedJob], jobs: list[ClaimedJob], freed: int, wanted: int
    ) -> None:
        """A write returned: its ended attempts' slots go to the jobs claimed with it. A worker
        that began stopping meanwhile releases those jobs instead (attempt not spent). `wanted`:
        what _refill_wanted said for this write; beyond its freed places, buffer places it
        reserved (another write may be under way with its own)."""
        self._written += 1
        self._prefetch.wrote(self._outcomes.last_write_s)
        held = 0
        for job in ended:
            if self._intake is not None:
                self._intake.ended(job)  # a plain arq pool's call is answered at once
            if self._holding:
                key = attempt_key(job)
                if key in self._holding:
                    self._holding.discard(key)
                    held += 1
        # The others were buffer places: their attempts took a buffered job as they ended.
        self._finishing -= held
        extra = wanted - min(freed, self.claim_batch) if wanted else 0
        self._prefetch.topping -= freed - held + extra
        if self._stopping or not self.allow_pick_jobs:
            for job in jobs:
                self._outcomes.submit(job, None)
            self._release_buffered()
            jobs = []
        for job in jobs:
            self._buffer(job)
        self._fill_slots()  # behind the jobs buffered before them: claims keep their order
        if len(jobs) < freed or not freed:
            self._slot_freed.set()

    def _buffer(self, job: ClaimedJob) -> None:
        """Buffers a claimed job, or releases it (attempt not spent) while its queue is held:
        the hold reached Redis after the claim that took it."""
        until = self._held.get(job.queue)
        if until is not None:
            if self.loop.time() < until:
                self._release([job], HELD)
                return
            del self._held[job.queue]
        self._prefetch.put(job)

    def _fill_slots(self) -> None:
        """Free slots take buffered jobs, oldest first: the buffer only holds jobs while all are
        busy. So do slots still waiting for their outcome write (the buffer was empty as their
        attempt ended): their write's jobs then refill the buffer instead."""
        if self._stopping or not self.allow_pick_jobs:
            return
        while self._prefetch and self.max_jobs - len(self.tasks) - self._finishing > 0:
            self._start_buffered()
        while self._prefetch and self._holding:
            self._holding.pop()
            self._finishing -= 1
            self._prefetch.topping += 1
            self._start_buffered()

    def _start_buffered(self) -> bool:
        """Starts the oldest buffered job (its recorded start moves to now); False when none."""
        taken = self._prefetch.take()
        if taken is None:
            return False
        self._start(*taken)
        return True

    def _release(self, jobs: Iterable[ClaimedJob], why: str, level: str = "INFO") -> None:
        """Claimed jobs that will not run here go back to waiting, attempt not spent (finish.lua's
        release; a job an operator cancelled meanwhile ends cancelled instead)."""
        for job in jobs:
            job_log(job).log(level, why)
            self._outcomes.submit(job, None)

    def _release_buffered(self) -> None:
        """Stopping or pausing: the whole buffer."""
        self._release(
            self._prefetch.take_all(),
            "worker stopping or paused: buffered job released back to waiting",
        )

    def _release_expired(self) -> None:
        """Buffered jobs past their shelf life, for any worker to take (prefetch.SHELF_LIFE_S):
        the slots they waited for stayed busy."""
        self._release(
            self._prefetch.expired(),
            "buffered past its shelf life: released back to waiting",
            "DEBUG",
        )
