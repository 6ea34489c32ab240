"""GraphQL types of the webhook ledger (admin only) and their converters from documents."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from revenue_engine.context import Info
from revenue_engine.documents import WebhookEvent as WebhookEventDoc
from revenue_engine.schema.errors import NotFoundError
from revenue_engine.schema.pagination import PageInfo


@strawberry.enum(description="Where a received Stripe event stands.")
class WebhookEventStatus(enum.StrEnum):
    PROCESSING = "processing"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


@strawberry.enum(description="What a replay achieved.")
class WebhookOutcome(enum.StrEnum):
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    BUSY = "busy"
    RETRY = "retry"


@strawberry.type(description="A Stripe event received by the webhook route, as the ledger has it.")
class WebhookEvent:
    id: strawberry.ID = strawberry.field(description="Stripe's event id (`evt_…`).")
    type: str
    livemode: bool
    api_version: str | None
    created: datetime = strawberry.field(description="When Stripe created the event.")
    received_at: datetime
    status: WebhookEventStatus
    attempts: int = strawberry.field(description="Deliveries and replays that claimed it.")
    last_error: str | None = strawberry.field(
        description="Why it was not applied (failed, ignored, or waiting for a redelivery)."
    )
    processed_at: datetime | None = strawberry.field(description="When the last attempt finished.")
    raw_payload: strawberry.Private[str]
    #: Already counted towards the response budget as it was read (a page of events).
    charged: strawberry.Private[bool] = False

    @strawberry.field(description="The event exactly as Stripe sent it.")
    def payload(self, info: Info) -> JSON:
        # Up to WEBHOOK_MAX_BODY_BYTES each: counted before decoding (response budget).
        if not self.charged:
            info.context.charge_response(len(self.raw_payload))
        parsed: Any = json.loads(self.raw_payload)
        return parsed  # type: ignore[no-any-return]


@strawberry.type
class WebhookEventEdge:
    cursor: str
    node: WebhookEvent


@strawberry.type(description="A page of webhook events, newest first.")
class WebhookEventConnection:
    edges: list[WebhookEventEdge]
    page_info: PageInfo


@strawberry.type
class ReplayWebhookEventPayload:
    outcome: WebhookOutcome
    event: WebhookEvent


ReplayWebhookEventResult = Annotated[
    ReplayWebhookEventPayload | NotFoundError, strawberry.union("ReplayWebhookEventResult")
]


def webhook_event_type(row: WebhookEventDoc, *, charged: bool = False) -> WebhookEvent:
    return WebhookEvent(
        id=strawberry.ID(row.event_id),
        type=row.type,
        livemode=row.livemode,
        api_version=row.api_version,
        created=row.created,
        received_at=row.received_at,
        status=WebhookEventStatus(row.status.value),
        attempts=row.attempts,
        last_error=row.last_error,
        processed_at=row.processed_at,
        raw_payload=row.payload,
        charged=charged,
    )


def connection(
    rows: list[WebhookEventDoc], has_next: bool, *, charged: bool = False
) -> WebhookEventConnection:
    edges = [
        WebhookEventEdge(cursor=str(row.id), node=webhook_event_type(row, charged=charged))
        for row in rows
    ]
    return WebhookEventConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
    )
