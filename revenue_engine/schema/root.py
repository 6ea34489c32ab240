"""The root ``Query`` and ``Mutation`` types: field names, arguments and their resolvers."""

from __future__ import annotations

from typing import Annotated

import strawberry

from revenue_engine.context import Info
from revenue_engine.resolvers import plans as plan_resolvers
from revenue_engine.resolvers import webhooks as webhook_resolvers
from revenue_engine.schema.plans import ArchivePlanResult, Plan, PlanInput, UpsertPlanResult
from revenue_engine.schema.viewer import Viewer, viewer_type
from revenue_engine.schema.webhooks import ReplayWebhookEventResult, WebhookEventConnection


@strawberry.type
class Query:
    plans: list[Plan] = strawberry.field(
        resolver=plan_resolvers.plans, description="The plan catalog, by sort order."
    )
    plan: Plan | None = strawberry.field(
        resolver=plan_resolvers.plan, description="One plan by uid; null when unknown."
    )

    webhook_events: WebhookEventConnection = strawberry.field(
        resolver=webhook_resolvers.webhook_events,
        description="Admin: received Stripe events, newest first (`first` at most 100).",
    )

    @strawberry.field(description="The authenticated caller (UNAUTHENTICATED without one).")
    def viewer(self, info: Info) -> Viewer:
        return viewer_type(info.context.require_principal())


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Admin: create or replace a plan by uid.")
    async def upsert_plan(
        self,
        info: Info,
        data: Annotated[PlanInput, strawberry.argument(name="input")],
        create_only: bool = False,
    ) -> UpsertPlanResult:
        return await plan_resolvers.upsert_plan(info, data, create_only)

    @strawberry.mutation(description="Admin: hide a plan from new purchases.")
    async def archive_plan(self, info: Info, uid: strawberry.ID) -> ArchivePlanResult:
        return await plan_resolvers.archive_plan(info, str(uid))

    @strawberry.mutation(description="Admin: dispatch a stored Stripe event again, by its id.")
    async def replay_webhook_event(self, info: Info, id: strawberry.ID) -> ReplayWebhookEventResult:
        return await webhook_resolvers.replay_webhook_event(info, id)
