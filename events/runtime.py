"""The events machinery of one process: its listener hub and, optionally, a delivery worker.

`start_events` is called by the application's lifespan (`dossier serve`: a worker in every
process unless `DOSSIER_WEBHOOK_DELIVER=0`) and by `dossier deliver` (a worker alone).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.crypto import FieldCipher
from events.delivery import DeliveryWorker
from events.hub import EventHub
from events.settings import WebhookSettings
from policy.store import PolicyStore
from resolvers.context import RequestContext

# the webhook settings of each running app, by its policy store (which every request context
# carries): the request pipeline's extras are not this module's to extend
_SETTINGS: weakref.WeakKeyDictionary[PolicyStore, WebhookSettings] = weakref.WeakKeyDictionary()


def webhook_settings(context: RequestContext) -> WebhookSettings:
    return _SETTINGS.get(context.policy_store) or WebhookSettings()


@dataclass
class EventsRuntime:
    hub: EventHub
    worker: DeliveryWorker | None

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
        await self.hub.stop()


async def start_events(
    *,
    webhooks: WebhookSettings,
    cipher: FieldCipher,
    sessions: async_sessionmaker[AsyncSession],
    listen_dsn: str,
    schema: Any,
    store: PolicyStore,
    deliver: bool,
) -> EventsRuntime:
    _SETTINGS[store] = webhooks
    hub = EventHub(listen_dsn)
    await hub.start()
    worker = None
    if deliver:
        worker = DeliveryWorker(
            sessions=sessions,
            settings=webhooks,
            cipher=cipher,
            schema=schema,
            store=store,
            hub=hub,
        )
        await worker.start()
    return EventsRuntime(hub=hub, worker=worker)
