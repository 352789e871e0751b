"""Client-side counts of what a process sends to Redis, to tell round trips from commands.

INFO commandstats counts every command Redis runs, including those a Lua script runs inside one
EVALSHA. Round trips are what a client waits for: one write of one command, one pipeline, or one
MULTI/EXEC block. redis-py packs every command it sends through `pack_command` and writes every
request through `send_packed_command`, so counting both gives commands sent and round trips.
The wrappers cost well under a microsecond per command, for every system alike."""

from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection


@dataclass
class Counts:
    commands: int = 0
    """Commands this process sent (MULTI and EXEC included; a script call is one)."""
    round_trips: int = 0
    """Requests written and waited for: a single command, a pipeline or a MULTI/EXEC block."""

    def reset(self) -> None:
        self.commands = 0
        self.round_trips = 0


COUNTS = Counts()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    pack = AbstractConnection.pack_command
    send = AbstractConnection.send_packed_command

    def counting_pack(self: AbstractConnection, *args: Any) -> list[bytes]:
        COUNTS.commands += 1
        return pack(self, *args)

    async def counting_send(
        self: AbstractConnection, command: Any, check_health: bool = True
    ) -> None:
        COUNTS.round_trips += 1
        await send(self, command, check_health)

    AbstractConnection.pack_command = counting_pack  # type: ignore[method-assign]
    AbstractConnection.send_packed_command = counting_send  # type: ignore[method-assign]
