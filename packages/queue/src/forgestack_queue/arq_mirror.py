"""arq's view of the calls the intake took: which sync rows (arq_sync.lua) bring arq's keys in line
with our jobs, so a plain pool's `Job` answers with arq's meanings."""

from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from .arq_calls import IntakeSettings, job_id_for
from .arq_wire import Answer, encode_answer
from .keys import job_key_prefix
from .options import ArqCallOptions
from .records import JobRecord, record_from_hash
from .states import JobState

STALE_TAKE_MS = 30_000
"""A call marked taken this long ago and never added: its taker died, and it is taken again."""
RESCORE_SLACK_MS = 50
"""arq's score follows our due time when they differ by more (clocks of two processes)."""

Row = list[Any]
"""One arq_sync.lua row: action, arq id, expected marker score, a, b."""


class ArqMirror:
    def __init__(self, redis: Redis, settings: IntakeSettings) -> None:
        self.redis = redis
        self.s = settings
        self._job_prefix = job_key_prefix(settings.prefix)

    def arq_of(self, record: JobRecord | None, arq_id: str) -> ArqCallOptions | None:
        """The record's arq call options when it holds that call of our arq queue."""
        arq = None if record is None else record.options.arq
        if arq is None or arq.queue_name != self.s.arq_queue or arq.arq_id != arq_id:
            return None
        return arq

    async def record(self, job_id: str) -> JobRecord | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(self._job_prefix + job_id)  # type: ignore[misc]
        return record_from_hash(raw) if raw else None

    async def rows(self, window: list[bytes], now: int) -> list[Row]:
        """For a window of taken calls ({id, marker score, ...}), as the take script lists them."""
        marks = [(window[i].decode(), int(float(window[i + 1]))) for i in range(0, len(window), 2)]
        # A call still being added is left alone, unless its taker died long ago.
        marks = [(arq_id, m) for arq_id, m in marks if m > 0 or now + m > STALE_TAKE_MS]
        if not marks:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for arq_id, _ in marks:
                pipe.hgetall(self._job_prefix + job_id_for(arq_id))
                pipe.zscore(self.s.arq_queue, arq_id)
            replies = await pipe.execute()
        rows: list[Row] = []
        for (arq_id, mark), raw, score in zip(marks, replies[::2], replies[1::2], strict=True):
            record = record_from_hash(raw) if raw else None
            arq = self.arq_of(record, arq_id)
            if mark < 0:
                # A stale take: marked if its add happened, else taken again by the next pass.
                if arq is not None:
                    rows.append(["mark", arq_id, mark, arq.enqueued_at, ""])
                else:
                    rows.append(["drop", arq_id, mark, "", ""])
            elif score is None:
                rows.append(["drop", arq_id, mark, "", ""])  # it left arq's queue
            elif record is None:
                rows.append(["gone", arq_id, mark, "", ""])
            elif arq is None or arq.enqueued_at != mark:
                rows.append(["drop", arq_id, mark, "", ""])  # the id holds another call now
            else:
                rows.append(self._row(record, arq, arq_id, mark, float(score), now))
        return rows

    def _row(
        self,
        record: JobRecord,
        arq: ArqCallOptions,
        arq_id: str,
        mark: int,
        score: float,
        now: int,
    ) -> Row:
        if record.state is JobState.ACTIVE:
            return ["active", arq_id, mark, self.s.lease_ms, ""]
        if record.state is JobState.DELAYED and record.delay_until is not None:
            due = int(record.delay_until.timestamp() * 1000)
            return ["wait", arq_id, mark, due if abs(due - score) > RESCORE_SLACK_MS else "", ""]
        if record.state is not JobState.COMPLETED and record.state is not JobState.FAILED:
            return ["wait", arq_id, mark, now if score > now else "", ""]
        success = record.state is JobState.COMPLETED
        answer = Answer(
            arq_id=arq_id,
            function=record.name,
            data=record.data,
            job_try=record.attempts_made + arq.job_try - 1,
            enqueued_at=arq.enqueued_at or now,
            success=success,
            result=self._typed(record) if success else record.failed_reason or "failed",
            started_at=_ms(record.processed_at, now),
            finished_at=_ms(record.finished_at, now),
            queue_name=self.s.arq_queue,
        )
        return self.answer_row(answer, mark, record.queue, pickled=arq.pickle)

    def _typed(self, record: JobRecord) -> Any:
        contract = self.s.contracts.get(record.queue)
        if contract is None or record.result is None:
            return record.result
        try:
            return contract.result_model.model_validate(record.result)
        except ValidationError:
            return record.result

    def answer_row(self, answer: Answer, mark: int, queue: str, *, pickled: bool) -> Row:
        """arq keeps a result for its function's `keep_result`, else the worker's, or for ever."""
        function = getattr(self.s.handlers.get(queue), "function", None)
        forever = self.s.keep_result_forever
        keep_s = self.s.keep_result_s
        if function is not None:
            if function.keep_result_forever is not None:
                forever = function.keep_result_forever
            if function.keep_result_s is not None:
                keep_s = function.keep_result_s
        data = b""
        if forever or keep_s > 0:
            data = encode_answer(answer, pickled=pickled, serializer=self.s.serializer) or b""
        return ["answer", answer.arq_id, mark, data, "" if forever else int(keep_s * 1000)]


def _ms(value: Any, default: int) -> int:
    return default if value is None else int(value.timestamp() * 1000)
