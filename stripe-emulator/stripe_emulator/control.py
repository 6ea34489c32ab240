"""The ``/_emulator`` control API: test knobs over HTTP (the same as the Python methods).

All bodies and answers are JSON.

* ``POST /_emulator/reset`` - forget all objects, events, keys, faults and knobs.
* ``GET /_emulator/state`` - object counts, pending deliveries, knobs, armed faults.
* ``POST /_emulator/faults`` - arm a fault: ``{"kind": "409"|"429"|"500"|"503"|"timeout"|"reset",
  "count": 1, "method": "POST", "path": "/v1/customers*", "when": "before"|"after",
  "hang_seconds": 30, "rate_limited_reason": "global-rate", "should_retry": null}``.
  ``GET`` lists armed faults, ``DELETE`` disarms all.
* ``GET /_emulator/requests?method=&path=`` - request log, counts and idempotency keys per
  route (``count`` and ``matching_idempotency_keys`` for the filter); ``DELETE`` clears it.
* ``GET /_emulator/deliveries`` - delivery knobs and every delivery with its attempts.
* ``POST /_emulator/deliveries/config`` - any of ``{"paused", "out_of_order", "duplicates",
  "delay_seconds", "retry_base_seconds", "retry_max_seconds", "max_attempts",
  "timeout_seconds"}``; ``POST /_emulator/deliveries/pause`` and ``.../resume`` are shorthands.
* ``POST /_emulator/deliveries/flush`` - ``{"timeout": 10}`` -> ``{"pending": 0}`` (504 when
  deliveries are still pending at the timeout).
* ``POST /_emulator/dunning`` - ``{"retry_days": [3, 5, 7], "final_action": "cancel"|"unpaid",
  "mark_uncollectible": false}``.
* ``POST /_emulator/payment_methods/{id}/decline`` - ``{"decline_code": "insufficient_funds"}``
  makes a saved card start declining (``null`` restores it).
* ``POST /_emulator/payment_intents/{id}/settle`` - ``{"outcome": "succeeded"|"failed"}``
  (optional; default: the test bank account's outcome) settles a ``processing`` bank debit now,
  as a test clock passing its settlement date would -> ``{"payment_intent": {...}}``.
* ``GET /_emulator/meters/{id}/usage?customer=cus_...&start=&end=`` -> ``{"usage": n}``: what
  the emulator counted for the customer on that meter (by its formula) over ``[start, end)``,
  all time by default; ``event_summaries`` answers the same through the API.
* ``POST /_emulator/webhook_endpoints/{id}/roll_secret`` -> ``{"secret": "whsec_..."}``; the
  previous secret keeps signing too (two ``v1`` signatures), as during a Stripe secret roll.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def control_routes(emulator: Emulator) -> list[Route]:
    async def reset(request: Request) -> Response:
        emulator.reset()
        return JSONResponse({"ok": True})

    async def state(request: Request) -> Response:
        return JSONResponse(emulator.describe())

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.clear_faults()
            return JSONResponse({"faults": []})
        if request.method == "GET":
            return JSONResponse({"faults": [f.as_json() for f in emulator.faults.armed()]})
        try:
            body = await _json_body(request)
            fault = emulator.inject_fault(**body)
        except (TypeError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"fault": fault.as_json()})

    async def requests_(request: Request) -> Response:
        if request.method == "DELETE":
            emulator.requests.clear()
            return JSONResponse({"ok": True})
        method, path = request.query_params.get("method"), request.query_params.get("path")
        summary = emulator.requests.summary()
        summary["count"] = emulator.requests.count(method, path)
        summary["matching_idempotency_keys"] = dict(
            emulator.requests.idempotency_keys(method, path)
        )
        return JSONResponse(summary)

    async def deliveries(request: Request) -> Response:
        return JSONResponse(
            {"knobs": emulator.delivery_knobs(), "deliveries": emulator.deliveries()}
        )

    async def delivery_config(request: Request) -> Response:
        action = request.path_params["action"]
        try:
            body = await _json_body(request)
            if action == "config":
                emulator.configure_deliveries(**body)
            elif action == "pause":
                emulator.pause_deliveries()
            elif action == "resume":
                emulator.resume_deliveries()
            elif action == "flush":
                try:
                    await emulator.flush_deliveries(timeout=float(body.get("timeout", 10.0)))
                except TimeoutError as error:
                    return JSONResponse(
                        {"error": str(error), "pending": emulator.pending_deliveries()},
                        status_code=504,
                    )
                return JSONResponse({"pending": emulator.pending_deliveries()})
            else:
                return JSONResponse({"error": f"unknown action {action}"}, status_code=404)
        except (TypeError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"knobs": emulator.delivery_knobs()})

    async def dunning(request: Request) -> Response:
        try:
            body = await _json_body(request)
            policy = emulator.set_dunning(**body)
        except (TypeError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(
            {
                "retry_days": list(policy.retry_days),
                "final_action": policy.final_action,
                "mark_uncollectible": policy.mark_uncollectible,
            }
        )

    async def decline(request: Request) -> Response:
        try:
            body = await _json_body(request)
            emulator.set_card_decline(request.path_params["id"], body.get("decline_code"))
        except (KeyError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"ok": True})

    async def settle(request: Request) -> Response:
        try:
            body = await _json_body(request)
            pi = emulator.settle_payment(request.path_params["id"], body.get("outcome"))
        except KeyError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"payment_intent": pi})

    async def meter_usage(request: Request) -> Response:
        query = request.query_params
        customer = query.get("customer")
        if not customer:
            return JSONResponse({"error": "customer is required"}, status_code=400)
        try:
            start, end = int(query.get("start", 0)), int(query.get("end", 2**62))
        except ValueError:
            return JSONResponse({"error": "start and end are unix times"}, status_code=400)
        value = emulator.meter_usage(request.path_params["id"], customer, start, end)
        return JSONResponse({"usage": value})

    async def roll(request: Request) -> Response:
        try:
            secret = emulator.roll_webhook_secret(request.path_params["id"])
        except KeyError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        return JSONResponse({"secret": secret})

    return [
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/state", state, methods=["GET"]),
        Route("/_emulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/requests", requests_, methods=["GET", "DELETE"]),
        Route("/_emulator/deliveries", deliveries, methods=["GET"]),
        Route("/_emulator/deliveries/{action}", delivery_config, methods=["POST"]),
        Route("/_emulator/dunning", dunning, methods=["POST"]),
        Route("/_emulator/payment_methods/{id}/decline", decline, methods=["POST"]),
        Route("/_emulator/payment_intents/{id}/settle", settle, methods=["POST"]),
        Route("/_emulator/meters/{id}/usage", meter_usage, methods=["GET"]),
        Route("/_emulator/webhook_endpoints/{id}/roll_secret", roll, methods=["POST"]),
    ]
