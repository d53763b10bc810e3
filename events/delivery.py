"""The delivery worker: claim due deliveries, sign, send, retry with backoff, dead-letter.

Any number of workers (one in each `dossier serve` process, any number of `dossier deliver`)
share the work through PostgreSQL alone: a batch is claimed with `FOR UPDATE OF d SKIP LOCKED`
and stays locked until its outcome commits, so two workers never hold the same delivery, and a
worker that dies (even by SIGKILL) drops its locks with its connection: the deliveries are still
PENDING and the next worker sends them (at least once; `webhook-id` lets a receiver drop a
repeat). Per endpoint, only the oldest open delivery is ever claimable: a later event waits
while an earlier one is pending or retrying, and moves on once it is delivered, skipped or
dead-lettered.

Each attempt reads the record as the webhook's principal (`events.payloads`), checks the URL
again (`events.safety`), signs with the Standard Webhooks library, and writes its audit event
(EXPORT of the fields sent, or of none) in the transaction that records its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from audit.chain import append_events
from audit.events import ActorKind, AuditAction, AuditRecord
from db.crypto import FieldCipher
from events.hub import EventHub
from events.payloads import TYPE_OF_RESOURCE, read_as
from events.principals import webhook_reader
from events.safety import UnsafeURLError, check_url, parse
from events.settings import WebhookSettings
from policy.decisions import AccessDecisions
from policy.store import PolicyStore
from schema.node import to_global_id

log = logging.getLogger("dossier.webhooks")

SECRET_LABEL = "webhook.secret"  # noqa: S105  # the FieldCipher label, not a secret
MAX_BACKOFF_SECONDS = 86400.0
DECISIONS_KEPT = 1024  # webhooks × policy versions; cleared when full
READ_CONCURRENCY = 6  # payload reads at once per batch: each holds a pooled connection
OPEN = ("PENDING", "RETRYING")

_CLAIM = text(
    """
    SELECT d.id, d.webhook_id, d.outbox_id, d.event, d.attempts,
           w.url, w.role, w.department_id, w.partner_token_id, w.secret_enc,
           o.resource_type, o.resource_id, o.changed_fields, o.at
    FROM webhook_deliveries d
    JOIN webhooks w ON w.id = d.webhook_id
    JOIN outbox_events o ON o.id = d.outbox_id
    WHERE d.status IN ('PENDING', 'RETRYING') AND d.next_attempt_at <= now() AND w.active
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.webhook_id = d.webhook_id AND e.status IN ('PENDING', 'RETRYING')
            AND e.id < d.id)
    ORDER BY d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
    """
)
_RECORD = text(
    """
    UPDATE webhook_deliveries AS d SET
        status = u.status,
        attempts = d.attempts + 1,
        last_error = u.error,
        response_status = u.response_status,
        next_attempt_at = now() + make_interval(secs => u.delay),
        delivered_at = CASE WHEN u.status = 'DELIVERED' THEN now() END
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]),
                CAST(:responses AS integer[]), CAST(:delays AS float8[]))
         AS u(id, status, error, response_status, delay)
    WHERE d.id = u.id
    """
)


@dataclass
class Outcome:
    status: str  # DELIVERED, RETRYING, DEAD, SKIPPED
    error: str | None = None
    response_status: int | None = None
    fields: tuple[str, ...] = ()
    delay: float = 0.0


def backoff(attempt: int, base: float) -> float:
    """Seconds before attempt `attempt + 1`, after `attempt` failed ones: base·2^(n-1)."""
    return float(min(base * (2 ** max(attempt - 1, 0)), MAX_BACKOFF_SECONDS))


class DeliveryWorker:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhookSettings,
        cipher: FieldCipher,
        schema: Any,
        store: PolicyStore,
        hub: EventHub | None = None,
        name: str = "worker",
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.cipher = cipher
        self.schema = schema
        self.store = store
        self.hub = hub
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._decisions_cache: dict[tuple[Any, ...], AccessDecisions] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    s.read_timeout_seconds,
                    connect=s.connect_timeout_seconds,
                    read=s.read_timeout_seconds,
                ),
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment: the checked address is used
            )
        return self._client

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def run(self) -> None:
        wakeup = self.hub.wakeup() if self.hub is not None else asyncio.Event()
        while True:
            wakeup.clear()
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away, a bug: log, wait, go on
                log.exception("webhook delivery round failed")
                done = 0
            if done:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), self.settings.poll_seconds)

    # -- one round ------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim one batch (at most one delivery per endpoint), send it, record it."""
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(_CLAIM, {"limit": self.settings.batch_size})).all()
            if not rows:
                return 0
            reads = asyncio.Semaphore(READ_CONCURRENCY)
            outcomes = await asyncio.gather(*(self._attempt(session, reads, row) for row in rows))
            await session.execute(
                _RECORD,
                {
                    "ids": [row.id for row in rows],
                    "statuses": [o.status for o in outcomes],
                    "errors": [o.error for o in outcomes],
                    "responses": [o.response_status for o in outcomes],
                    "delays": [o.delay for o in outcomes],
                },
            )
            # last before the commit: the audit chain's lock is held from here to COMMIT
            await append_events(
                session, [self._audit(row, o) for row, o in zip(rows, outcomes, strict=True)]
            )
        return len(rows)

    async def _attempt(self, session: AsyncSession, reads: asyncio.Semaphore, row: Any) -> Outcome:
        try:
            async with reads:
                prepared = await self._prepare(row)
            if isinstance(prepared, Outcome):
                return prepared
            body, fields = prepared
            return await self._send(row, body, fields)
        except Exception as error:  # whatever failed, the delivery is retried, never lost
            log.exception("webhook delivery %s failed", row.id)
            return self._failed(row, f"internal: {type(error).__name__}")

    async def _decisions(self, row: Any) -> AccessDecisions | str:
        """The webhook's decisions, kept per policy version; or why it reads nothing.

        A partner token is looked up at every delivery (a revocation stops the next one); a
        role needs no lookup. Kept decisions keep their compiled statements, as a user's do.
        """
        snapshot = self.store.current()
        if row.partner_token_id is not None:
            async with self.sessions() as session:
                reader = await webhook_reader(session, row)
        else:
            reader = await webhook_reader(None, row)  # type: ignore[arg-type]  # no lookup
        if reader.principal is None:
            return reader.refusal or "no principal"
        key = (row.webhook_id, reader.principal, snapshot.version)
        decisions = self._decisions_cache.get(key)
        if decisions is None:
            if len(self._decisions_cache) >= DECISIONS_KEPT:
                self._decisions_cache.clear()
            decisions = self._decisions_cache[key] = reader.decisions(snapshot)
        return decisions

    async def _prepare(self, row: Any) -> Outcome | tuple[bytes, tuple[str, ...]]:
        decisions = await self._decisions(row)
        if isinstance(decisions, str):
            return Outcome("SKIPPED", error=decisions)
        seen = await read_as(
            schema=self.schema,
            sessions=self.sessions,
            cipher=self.cipher,
            store=self.store,
            decisions=decisions,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            operation="webhookDelivery",
        )
        if seen.data is None:
            return Outcome("SKIPPED", error="the record is outside the webhook's scope")
        visible = set(seen.fields)
        type_name = TYPE_OF_RESOURCE[row.resource_type]
        body = {
            "type": row.event,
            "timestamp": _iso(row.at),
            "data": {
                "id": to_global_id(type_name, row.resource_id),
                "type": type_name,
                "node": seen.data,
                # only what the receiver may read may be named as changed
                "changedFields": [f for f in row.changed_fields if f in visible],
            },
        }
        return orjson.dumps(body), tuple(seen.fields)

    async def _send(self, row: Any, body: bytes, fields: tuple[str, ...]) -> Outcome:
        try:
            target = await check_url(row.url, allow_private=self.settings.allow_private)
        except UnsafeURLError as refused:
            return self._failed(row, f"refused: {refused.reason}")
        _, server_name, _ = parse(row.url)
        secret = self.cipher.decrypt(SECRET_LABEL, row.secret_enc)
        assert secret is not None  # every webhook is stored with its secret
        message_id = f"msg_{row.id}"
        now = datetime.now(UTC)
        signature = Webhook(secret).sign(message_id, now, body)
        headers = {
            "host": target.host,
            "content-type": "application/json",
            "user-agent": "Dossier-Webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        extensions = {"sni_hostname": server_name} if row.url.startswith("https") else {}
        try:
            async with self.client().stream(
                "POST", target.url, content=body, headers=headers, extensions=extensions
            ) as response:
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > self.settings.max_response_bytes:
                        break  # the rest is never read: the answer is over its cap
                status = response.status_code
        except httpx.TimeoutException:
            return self._failed(row, "timeout", fields)
        except httpx.HTTPError as error:
            return self._failed(row, f"connection: {type(error).__name__}", fields)
        if 200 <= status < 300:
            return Outcome("DELIVERED", response_status=status, fields=fields)
        reason = "redirect not followed" if 300 <= status < 400 else f"HTTP {status}"
        outcome = self._failed(row, reason, fields)
        outcome.response_status = status
        return outcome

    def _failed(self, row: Any, error: str, fields: tuple[str, ...] = ()) -> Outcome:
        """`fields`: what the body carried, when it may have left (audited as sent)."""
        attempt = row.attempts + 1
        if attempt >= self.settings.max_attempts:
            return Outcome("DEAD", error=error, fields=fields)
        delay = backoff(attempt, self.settings.retry_base_seconds)
        return Outcome("RETRYING", error=error, fields=fields, delay=delay)

    def _audit(self, row: Any, outcome: Outcome) -> AuditRecord:
        return AuditRecord(
            actor=f"webhook:{row.webhook_id}",
            actor_kind=ActorKind.SYSTEM,
            action=AuditAction.EXPORT,
            resource_type=row.resource_type,
            resource_ids=[row.resource_id],
            fields=sorted(outcome.fields),
            changes={
                "webhook": str(row.webhook_id),
                "delivery": str(row.id),
                "event": row.event,
                "attempt": row.attempts + 1,
                "status": outcome.status,
                "responseStatus": outcome.response_status,
                "error": outcome.error,
            },
            operation="webhookDelivery",
        )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
