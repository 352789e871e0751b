"""Redis key names. One place, so the Lua scripts' KEYS order and the readers never drift apart."""

from dataclasses import dataclass

from .states import JobState


def job_key_prefix(prefix: str) -> str:
    return f"{prefix}:job:"


def logs_key(prefix: str, job_id: str) -> str:
    """A job's log lines (Job.log); every script that deletes the job deletes this list too."""
    return f"{prefix}:logs:{job_id}"


def queue_key_prefix(prefix: str) -> str:
    """Scripts that touch many queues build `<this><queue>:<part>` themselves (see QueueKeys)."""
    return f"{prefix}:q:"


def worker_channel_prefix(prefix: str) -> str:
    """A worker hears on `<this><worker id>:cancel` which of its running jobs to cancel."""
    return f"{prefix}:worker:"


def queues_key(prefix: str) -> str:
    """Set of every queue name ever added to: lets operators find queues no worker serves."""
    return f"{prefix}:queues"


STATE_PARTS = {
    JobState.WAITING: "wait",
    JobState.DELAYED: "delayed",
    JobState.ACTIVE: "active",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
}
"""Each state's key suffix, as the Lua scripts name them."""


@dataclass(frozen=True, slots=True)
class QueueKeys:
    prefix: str
    queue: str

    def _k(self, part: str) -> str:
        return f"{self.prefix}:q:{self.queue}:{part}"

    @property
    def base(self) -> str:
        """`<prefix>:q:<queue>:`: scripts build the owner index keys from it (index_move)."""
        return self._k("")

    @property
    def wait(self) -> str:
        return self._k("wait")

    @property
    def delayed(self) -> str:
        return self._k("delayed")

    @property
    def active(self) -> str:
        return self._k("active")

    @property
    def completed(self) -> str:
        return self._k("completed")

    @property
    def failed(self) -> str:
        return self._k("failed")

    @property
    def seq(self) -> str:
        return self._k("seq")

    @property
    def fair(self) -> str:
        """Hash of the fair order's clocks and the unowned jobs' last tags (_prelude.lua
        fair_score)."""
        return self._k("fair")

    @property
    def claim_keys(self) -> tuple[str, str, str, str]:
        """claim.lua's KEYS for this queue, in its order."""
        return (self.wait, self.delayed, self.active, self.failed)

    @property
    def release_keys(self) -> tuple[str, str, str]:
        """release_claim.lua's KEYS for this queue, in its order."""
        return (self.wait, self.active, self.marker)

    @property
    def marker(self) -> str:
        """Idle workers block on this sorted set; every add puts one member in it to wake one."""
        return self._k("marker")

    @property
    def ctl(self) -> str:
        """Hash of the queue's controls (pause, limit overrides, remote hold): see _prelude.lua."""
        return self._k("ctl")

    @property
    def rate_window(self) -> str:
        """Sorted set of the claim times in the current rate-limit window."""
        return self._k("rl")

    def state_set(self, state: JobState) -> str:
        return self._k(STATE_PARTS[state])

    def owner_set(self, owner: str, state: JobState) -> str:
        """An owner's index of one state: the same members and scores as the queue's state set,
        restricted to that owner's jobs; every script that moves a job keeps it in step."""
        return self._k(f"o:{owner}:{STATE_PARTS[state]}")

    @property
    def events(self) -> str:
        """The queue's event stream, capped at the length stored in `events_maxlen`."""
        return self._k("events")

    @property
    def events_maxlen(self) -> str:
        return self._k("events:maxlen")

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"
