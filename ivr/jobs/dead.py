"""Dead letters: jobs that failed every retry, for `ivr jobs dead` and the console."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dramatiq import Message
from dramatiq.brokers.stub import StubBroker

from ivr.phones import mask_text

if TYPE_CHECKING:
    from ivr.jobs.queue import DramatiqJobs

log = logging.getLogger(__name__)


class NoSuchDeadLetter(LookupError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    job: str
    queue: str
    payload: dict[str, Any]
    retries: int
    failed_at: datetime | None
    error: str  # the last line of the last traceback, phone numbers masked

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "job": self.job,
            "queue": self.queue,
            "payload": self.payload,
            "retries": self.retries,
            "failed_at": self.failed_at.isoformat() if self.failed_at else None,
            "error": self.error,
        }


def _letter(
    message: Message[Any], failed_ms: float | None, store_id: str | None = None
) -> DeadLetter:
    tb = str(message.options.get("traceback") or "").strip()
    last = tb.splitlines()[-1] if tb else ""
    payload = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
    return DeadLetter(
        message_id=store_id or message.message_id,
        job=message.actor_name,
        queue=message.queue_name,
        payload=payload,
        retries=int(message.options.get("retries", 0)),
        failed_at=datetime.fromtimestamp(failed_ms / 1000, UTC) if failed_ms else None,
        error=mask_text(last),
    )


def _queues(jobs: DramatiqJobs) -> list[str]:
    return sorted({q.removesuffix(".DQ") for q in jobs.broker.get_declared_queues()})


def dead_letters(jobs: DramatiqJobs, limit: int = 100) -> list[DeadLetter]:
    """The newest dead-lettered jobs first, at most `limit`."""
    out: list[DeadLetter] = []
    if isinstance(jobs.broker, StubBroker):
        for m in jobs.broker.dead_letters:
            out.append(_letter(m._message, m.options.get("requeue_timestamp")))
    else:
        client, ns = jobs.client, jobs.cfg.namespace
        assert client is not None
        for q in _queues(jobs):
            xq = f"{ns}:{q}.XQ"
            for raw_id, score in client.zrevrange(xq, 0, limit - 1, withscores=True):
                data = client.hget(f"{xq}.msgs", raw_id)
                if data is None:
                    continue
                sid = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                out.append(_letter(Message.decode(data), score, sid))
    out.sort(key=lambda d: d.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return out[:limit]


def requeue_dead(jobs: DramatiqJobs, message_id: str) -> DeadLetter:
    """Run a dead-lettered job again (with fresh retries); it leaves the dead letters."""
    if isinstance(jobs.broker, StubBroker):
        for q, proxies in jobs.broker.dead_letters_by_queue.items():
            for p in proxies:
                if p.message_id == message_id:
                    proxies.remove(p)
                    return _resend(jobs, p._message, q)
    else:
        client, ns = jobs.client, jobs.cfg.namespace
        assert client is not None
        for q in _queues(jobs):
            xq = f"{ns}:{q}.XQ"
            data = client.hget(f"{xq}.msgs", message_id)
            if data is not None:
                client.zrem(xq, message_id)
                client.hdel(f"{xq}.msgs", message_id)
                return _resend(jobs, Message.decode(data), q)
    raise NoSuchDeadLetter(f"no dead letter {message_id!r}")


def _resend(jobs: DramatiqJobs, message: Message[Any], queue: str) -> DeadLetter:
    letter = _letter(message, None)
    fresh = message.copy(queue_name=queue.removesuffix(".DQ"), options={})
    jobs.broker.enqueue(fresh)
    if jobs.embedded:
        jobs.start_worker()
    log.warning("dead job %s (%s) queued again", letter.job, message.message_id)
    return letter
