"""Events and webhook endpoints.

Routes: ``GET /v1/events`` (``type`` with ``*`` wildcards, ``types[]``, ``created``,
``delivery_success``), ``GET /v1/events/{id}``; ``POST /v1/webhook_endpoints`` (returns the
``whsec_…`` secret, only at creation, as Stripe does), ``GET|POST|DELETE
/v1/webhook_endpoints/{id}``, ``GET /v1/webhook_endpoints``.

``delivery_success`` is false while any delivery of the event to an enabled endpoint is pending
or has failed for good; events that matched no endpoint count as delivered.
"""

from __future__ import annotations

import fnmatch
from urllib.parse import urlparse

from stripe_emulator import reference
from stripe_emulator.errors import invalid_request
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id, webhook_secret
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON


def delivery_success(ctx: Ctx, event: JSON) -> bool:
    return bool(ctx.store.priv(event["id"]).get("delivery_success", True))


def _events(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "type", "types", "created", "delivery_success"))
    pattern = p.string("type")
    types = set(p.strings("types"))
    if pattern and types:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(types) > 20:
        raise invalid_request("You may pass at most 20 types.", param="types")
    delivered = p.boolean("delivery_success")
    created = created_filter(p)
    items = ctx.store.all(
        "event",
        lambda e: (
            (pattern is None or fnmatch.fnmatchcase(e["type"], pattern))
            and (not types or e["type"] in types)
            and (delivered is None or delivery_success(ctx, e) == delivered)
            and created(e)
        ),
    )
    return paginate(items, p, "/v1/events")


def _event(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("event", id)


def _endpoint_fields(endpoint: JSON, p: Params) -> None:
    if p.has("url"):
        url = p.string("url", required=True)
        assert url is not None
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise invalid_request(f"Invalid URL: {url}", param="url", code="url_invalid")
        endpoint["url"] = url
    if p.has("enabled_events"):
        events = p.strings("enabled_events", required=True)
        endpoint["enabled_events"] = reference.event_types(events, param="enabled_events")
    if p.has("description"):
        endpoint["description"] = p.string("description")
    endpoint["metadata"] = merge_metadata(endpoint["metadata"], p.metadata(), replace=False)


def _endpoint_create(ctx: Ctx, p: Params) -> JSON:
    p.only(("url", "enabled_events", "api_version", "description", "metadata", "connect", "expand"))
    p.string("url", required=True)
    p.strings("enabled_events", required=True)
    version = p.string("api_version")
    if version is not None:
        reference.api_version(version, param="api_version")
    endpoint: JSON = {
        "id": new_id("we_"),
        "object": "webhook_endpoint",
        "api_version": version,
        "application": None,
        "created": ctx.state.now(),
        "description": None,
        "enabled_events": [],
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": "",
    }
    _endpoint_fields(endpoint, p)
    secret = webhook_secret()
    ctx.store.put(endpoint)
    ctx.store.priv(endpoint["id"])["secrets"] = [secret]
    # The secret is only ever shown in the creation response.
    return {**endpoint, "secret": secret}


def _endpoint_retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("webhook_endpoint", id)


def _endpoint_update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("url", "enabled_events", "description", "metadata", "disabled", "expand"))
    endpoint = ctx.store.require("webhook_endpoint", id)
    _endpoint_fields(endpoint, p)
    if p.has("disabled"):
        endpoint["status"] = "disabled" if p.boolean("disabled") else "enabled"
    return endpoint


def _endpoint_delete(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(())
    ctx.store.require("webhook_endpoint", id)
    ctx.store.priv(id)["deleted"] = True
    return {"id": id, "object": "webhook_endpoint", "deleted": True}


def _endpoint_list(ctx: Ctx, p: Params) -> JSON:
    p.only(PAGINATION)
    return paginate(ctx.store.all("webhook_endpoint"), p, "/v1/webhook_endpoints")


def endpoint_wants(endpoint: JSON, event_type: str) -> bool:
    if endpoint["status"] != "enabled":
        return False
    enabled = endpoint["enabled_events"]
    return "*" in enabled or event_type in enabled


ROUTES = [
    Route("GET", "/v1/events", _events),
    Route("GET", "/v1/events/{id}", _event),
    Route("POST", "/v1/webhook_endpoints", _endpoint_create),
    Route("GET", "/v1/webhook_endpoints", _endpoint_list),
    Route("GET", "/v1/webhook_endpoints/{id}", _endpoint_retrieve),
    Route("POST", "/v1/webhook_endpoints/{id}", _endpoint_update),
    Route("DELETE", "/v1/webhook_endpoints/{id}", _endpoint_delete),
]
