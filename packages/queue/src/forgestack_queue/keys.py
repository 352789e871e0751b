"""Redis key names. One place, so the Lua scripts' KEYS order and the readers never drift apart.

Two layouts, chosen by the client (`layout_for`): a plain Redis keeps the original one (job records
and logs global, `<prefix>:job:<id>`), so existing data needs no migration; a Redis Cluster client
gets the tagged one, where every key of a queue and of its jobs carries the queue's hash tag
(`<prefix>:q:{<queue>}:...`, job records `<prefix>:q:{<queue>}:job:<id>`), so each script runs
on the one shard that owns the queue. docs/operations/redis-topologies.md tells why."""

from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from .states import JobState

RESERVED = frozenset("{}")
"""Hash tag delimiters: a prefix or queue name holding one would move keys to another slot."""


def check_queue_name(name: str) -> str:
    """Refuses names that would break either layout: ':' splits key parts, braces hash tags."""
    if not name or ":" in name or RESERVED & set(name):
        raise ValueError(f"queue name {name!r} must be non-empty and contain no ':', '{{' or '}}'")
    return name


def check_prefix(prefix: str) -> str:
    """A brace in the prefix would make it (not the queue) the hash tag of a tagged key."""
    if RESERVED & set(prefix):
        raise ValueError(f"key prefix {prefix!r} must contain no '{{' or '}}'")
    return prefix


def is_cluster(redis: Any) -> bool:
    """Whether the client speaks to a Redis Cluster: it then gets the tagged layout, one script
    call per queue, and no MULTI across keys."""
    return isinstance(redis, RedisCluster)


def job_key_prefix(prefix: str) -> str:
    """The plain layout's job key prefix (QueueKeys.job_prefix gives either layout's)."""
    return f"{prefix}:job:"


def logs_key(prefix: str, job_id: str) -> str:
    """The plain layout's log list of a job (QueueKeys.logs gives either layout's)."""
    return f"{prefix}:logs:{job_id}"


def queue_key_prefix(prefix: str, *, tagged: bool = False) -> str:
    """finish.lua builds `<this><queue>:<part>` (tagged: `<this><queue>}:<part>`, the prefix
    ending in '{') for the queue each outcome row names (see QueueKeys)."""
    return f"{prefix}:q:{{" if tagged else f"{prefix}:q:"


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
    tagged: bool = False
    """The Redis Cluster layout: the queue's name is the hash tag of every key below."""

    def _k(self, part: str) -> str:
        if self.tagged:
            return f"{self.prefix}:q:{{{self.queue}}}:{part}"
        return f"{self.prefix}:q:{self.queue}:{part}"

    @property
    def base(self) -> str:
        """`<prefix>:q:<queue>:` (tagged: `<prefix>:q:{<queue>}:`): scripts build the owner index,
        fair, parked and event keys from it, so those share the queue's slot by construction."""
        return self._k("")

    @property
    def job_prefix(self) -> str:
        """What the scripts prepend to an id for its record. Plain: global (`<prefix>:job:`), so
        an id is unique across queues; tagged: the queue's own (`<base>job:`). Either ends in
        'job:', which _prelude.lua's logs_key relies on."""
        if self.tagged:
            return self._k("job:")
        return job_key_prefix(self.prefix)

    def logs(self, job_id: str) -> str:
        """A job's log lines (Job.log); every script that deletes the job deletes this list too."""
        if self.tagged:
            return self._k(f"logs:{job_id}")
        return logs_key(self.prefix, job_id)

    @property
    def metrics(self) -> str:
        """The queue's metrics hash (metrics.py): counters the add script and workers bump."""
        if self.tagged:
            return self._k("metrics")
        return f"{self.prefix}:metrics:{self.queue}"

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
        return self.job_prefix + job_id


def layout_for(redis: Any, prefix: str, queue: str) -> QueueKeys:
    """The one decision: a cluster client gets the tagged layout, any other the plain one."""
    return QueueKeys(prefix, queue, tagged=is_cluster(redis))
