"""Resolvers of the webhook ledger: listing and replaying events (admin only)."""

from __future__ import annotations

import strawberry

from revenue_engine.context import Info
from revenue_engine.documents import WebhookEventStatus as StatusDoc
from revenue_engine.schema.pagination import page_size, selects
from revenue_engine.schema.webhooks import (
    ReplayWebhookEventPayload,
    WebhookEventConnection,
    WebhookEventStatus,
    WebhookOutcome,
    connection,
    webhook_event_type,
)
from revenue_engine.webhooks import ledger
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.replay import replay_event


async def webhook_events(
    info: Info,
    status: WebhookEventStatus | None = None,
    type: str | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> WebhookEventConnection:
    info.context.require_admin()
    first = page_size(first)
    # A page of 100 rows may carry 100 MiB of payloads: read them only when asked for, and
    # count them towards the response budget as they are read (the read stops past it).
    with_payload = selects(info, "payload")
    rows, has_next = await ledger.list_events(
        status=StatusDoc(status.value) if status else None,
        type=type,
        first=first,
        after=after,
        with_payload=with_payload,
        charge=info.context.charge_response if with_payload else None,
    )
    return connection(rows, has_next, charged=with_payload)


async def replay_webhook_event(info: Info, event_id: strawberry.ID) -> ReplayWebhookEventPayload:
    info.context.require_admin()
    context = HandlerContext.from_settings(info.context.settings, info.context.gateway)
    outcome, row = await replay_event(str(event_id), context)
    return ReplayWebhookEventPayload(
        outcome=WebhookOutcome(outcome.value), event=webhook_event_type(row)
    )
