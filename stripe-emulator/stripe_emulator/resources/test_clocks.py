"""Test clocks: simulated time for billing.

Routes: ``POST /v1/test_helpers/test_clocks`` (``frozen_time``, ``name``), ``GET|DELETE
/v1/test_helpers/test_clocks/{id}``, ``GET /v1/test_helpers/test_clocks``,
``POST /v1/test_helpers/test_clocks/{id}/advance``.

Advancing walks every billing action due on the clock's customers in time order — trial
notices and ends, scheduled cancellations, renewals, payment retries, incomplete expiry — with
the clock set to each action's time, so invoices and events carry the times Stripe would give
them. Like Stripe, the advance call answers ``status: "advancing"``; the work is done by the time
the response is sent, so the next retrieve shows ``ready``.
"""

from __future__ import annotations

from stripe_emulator.errors import api_error, invalid_request
from stripe_emulator.events import emit
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, paginate
from stripe_emulator.routing import Route
from stripe_emulator.schedule import next_action, run_action
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

KIND = "test_helpers.test_clock"
MAX_STEPS = 10_000


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(("frozen_time", "name", "expand"))
    frozen = p.integer("frozen_time", required=True, minimum=0)
    assert frozen is not None
    clock: JSON = {
        "id": new_id("clock_"),
        "object": KIND,
        "created": ctx.state.now(),
        "deletes_after": ctx.state.now() + 30 * 86400,
        "frozen_time": frozen,
        "livemode": False,
        "name": p.string("name", max_length=300),
        "status": "ready",
        "status_details": {},
    }
    ctx.store.put(clock)
    emit(ctx, "test_helpers.test_clock.created", clock)
    return clock


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require(KIND, id, param="test_clock")


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only(PAGINATION)
    return paginate(ctx.store.all(KIND), p, "/v1/test_helpers/test_clocks")


def _delete(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(())
    clock = ctx.store.require(KIND, id, param="test_clock")
    # Deleting a clock deletes the objects living on it (no events, as on Stripe).
    for kind in ("customer", "subscription", "invoice"):
        for obj in ctx.store.all(kind, lambda o: ctx.state.clock_of(o) == id):
            ctx.store.priv(obj["id"])["deleted"] = True
    ctx.store.priv(id)["deleted"] = True
    emit(ctx, "test_helpers.test_clock.deleted", clock)
    return {"id": id, "object": KIND, "deleted": True}


def advance(ctx: Ctx, clock: JSON, target: int) -> JSON:
    """Move the clock to ``target``, running everything that falls due on the way."""
    if target <= int(clock["frozen_time"]):
        raise invalid_request(
            "The frozen_time must be after the test clock's current frozen_time.",
            param="frozen_time",
        )
    clock["status"] = "advancing"
    clock["status_details"] = {"advancing": {"target_frozen_time": target}}
    answer = snapshot(clock)
    emit(ctx, "test_helpers.test_clock.advancing", clock)
    # What falls due while the clock advances is Stripe's own doing, not the advance request's.
    ctx = ctx.background()
    for _ in range(MAX_STEPS):
        action = next_action(ctx, clock["id"], target)
        if action is None:
            break
        at, kind, object_id = action
        clock["frozen_time"] = max(int(clock["frozen_time"]), at)
        run_action(ctx, kind, object_id)
    else:
        raise api_error(500, "The test clock could not finish advancing.")
    clock.update(frozen_time=target, status="ready", status_details={})
    emit(ctx, "test_helpers.test_clock.ready", clock)
    return answer


def _advance(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("frozen_time", "expand"))
    clock = ctx.store.require(KIND, id, param="test_clock")
    target = p.integer("frozen_time", required=True, minimum=0)
    assert target is not None
    return advance(ctx, clock, target)


ROUTES = [
    Route("POST", "/v1/test_helpers/test_clocks", _create),
    Route("GET", "/v1/test_helpers/test_clocks", _list),
    Route("GET", "/v1/test_helpers/test_clocks/{id}", _retrieve),
    Route("DELETE", "/v1/test_helpers/test_clocks/{id}", _delete),
    Route("POST", "/v1/test_helpers/test_clocks/{id}/advance", _advance),
]
