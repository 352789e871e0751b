"""Script calls on a Redis Cluster, sent once.

redis-py's cluster client sends a command again after a connection or timeout error (three times
by default, `cluster_error_retry_attempts`). For a script whose reply alone was lost that runs it
twice: a claim's first run leaves its jobs active under a lease nobody renews (the attempt is
spent when it lapses), and an outcome write's second run reads its own first one as another's.
The layer fences lost replies itself (claims undone by token, outcome writes retried against the
token fence), so on a cluster each call goes to the node of its first key with that node named,
which redis-py never re-sends; a moved slot is still followed, as that is no re-send."""

from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT


class ClusterScript(AsyncScript):
    def __init__(self, client: RedisCluster, script: str) -> None:
        super().__init__(client, script)  # type: ignore[arg-type]
        self._cluster = client

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: Any = None,
    ) -> Any:
        keys = list(keys or [])
        if not keys or client is not None:
            raise ValueError("a cluster script call names at least one key, on its own client")
        words = (len(keys), *keys, *(args or []))
        await self._cluster.initialize()  # after a connection error: the slots anew
        node = self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(keys[0]))
        try:
            return await self._cluster.execute_command(
                "EVALSHA", self.sha, *words, target_nodes=node
            )
        except NoScriptError:
            self.sha = await self._cluster.script_load(self.script)
            return await self._cluster.execute_command(
                "EVALSHA", self.sha, *words, target_nodes=node
            )
