"""Renewing the leases of the jobs a worker holds, running or buffered, and what a lapsed one
means. A lease is a claim that expires: a worker stalled past it (a blocked event loop) may find its
job recovered and running elsewhere, and must then neither start it nor count its outcome. Apart
from the worker's job path: it runs on a timer, a third of a lease apart, never per job."""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet

from loguru import logger

from .job_logs import job_log
from .keys import QueueKeys
from .prefetch import Prefetch
from .runner import ClaimedJob
from .scripts import Scripts


class LeaseRenewal:
    """Reads the worker's own collections (kept, not copied): `running` and `settled` by attempt
    key, and the prefetch buffer, whose jobs are held like running ones."""

    def __init__(
        self,
        running: Mapping[str, ClaimedJob],
        settled: AbstractSet[str],
        prefetch: Prefetch,
        cancel: Callable[[str], None],
        release: Callable[[Iterable[ClaimedJob], str, str], None],
    ) -> None:
        """`cancel`: a job an operator cancelled (the worker's handling of a cancel message);
        `release`: buffered jobs that must not start here, back to waiting."""
        self._running = running
        self._settled = settled
        self._prefetch = prefetch
        self._cancel = cancel
        self._release = release
        self._warned: set[str] = set()
        """Running attempts already logged as having lost their lease (`lost`)."""

    async def run(self, scripts: Scripts, keys: Mapping[str, QueueKeys], lease_ms: int) -> None:
        while True:
            await asyncio.sleep(lease_ms / 3000)
            by_queue: dict[str, list[str]] = defaultdict(list)
            for key, job in list(self._running.items()):
                if key not in self._settled:
                    by_queue[job.queue] += (job.id, job.token)
            for job in self._prefetch:  # claimed, not yet running: held like running ones
                by_queue[job.queue] += (job.id, job.token)
            for queue, pairs in by_queue.items():
                try:
                    _, cancelled, lost = await scripts.extend(
                        keys=[keys[queue].active],
                        args=[keys[queue].job_prefix, lease_ms, *pairs],
                    )
                except Exception:  # a missed renewal is retried next round
                    logger.exception("lease renewal failed for queue {}", queue)
                    continue
                for job_id in cancelled:  # a cancel message this worker missed
                    self._cancel(job_id.decode())
                self.lost(
                    queue,
                    {(lost[i].decode(), lost[i + 1].decode()) for i in range(0, len(lost), 2)},
                )

    def lost(self, queue: str, held: set[tuple[str, str]]) -> None:
        """Attempts of `queue` (id, token) whose lease lapsed here (a stall longer than the lease)
        and whose jobs were recovered: another worker may run them now. A buffered one must not
        start here too; a running one goes on, and its outcome is discarded by the token check. By
        token, not id: this worker's own fresh claim of such a job still holds it."""
        if not held:
            return
        self._release(
            self._prefetch.remove_lost(queue, held),
            "lease lost while buffered (the job was recovered): not started here",
            "WARNING",
        )
        self._warned &= self._running.keys()
        for key, job in self._running.items():
            if key in self._warned or key in self._settled:
                continue  # warned already, or ended (and written) while the renewal was out
            if job.queue == queue and (job.id, job.token) in held:
                self._warned.add(key)
                job_log(job).warning("lease lost while running: its outcome will be discarded")
