"""The plan catalog from memory: every plan, validated once, shared by the requests of this
process until the catalog changes.

Freshness. Every write to the catalog increments a version counter in the store
(``documents.plan.catalog_changed``). The cache remembers the version it was built at and
checks the store's at most every ``CHECK_INTERVAL`` seconds (one read of one document by
``_id``); a different version rebuilds it. So:

* in the instance that wrote, the next read rebuilds (the write also counts in this process);
* in every other instance, within ``CHECK_INTERVAL`` plus one read of the version —
  at most 1 s.

The version is read before the plans: a write landing between the two leaves the cache newer
than its version, and the next check rebuilds it again. A plan the cache does not hold (one
written moments ago by another instance) is read from the store, so a new plan is never
reported missing. A cache older than ``MAX_AGE`` rebuilds whatever the version says: a
writer that stopped between its write and its increment is seen then.

While the store is unreachable, a failed version check keeps the catalog as last checked: the
plans are served from memory for up to ``MAX_AGE`` after the cache was built (a rebuild needs
the store, and fails as every store read does). After a failed check the next ones run in the
background (one at a time) while requests are answered from memory at once: during an outage
a catalog read no longer waits out the store's timeout every ``CHECK_INTERVAL``. The first
check that succeeds brings the synchronous checks, and their bound, back.

The plans handed out are shared: callers read them and never change them (a writer reads
its own copy from the store, as ``services.plan_store`` does).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from revenue_engine.db import StoreError
from revenue_engine.documents import SubscriptionPlan
from revenue_engine.documents.plan import catalog_version, local_catalog_changes

log = logging.getLogger(__name__)

#: Seconds between two checks of the catalog's version in the store.
CHECK_INTERVAL = 0.5
#: Seconds after which the cache is rebuilt whatever the version says.
MAX_AGE = 60.0


@dataclass(slots=True)
class _Catalog:
    #: The store's plan collection this cache was built from (another database in the same
    #: process — a test, a second app — has its own).
    collection: Any
    version: int
    local_changes: int
    built_at: float
    checked_at: float
    by_uid: dict[str, SubscriptionPlan] = field(default_factory=dict)
    #: A digest of the plans as stored: any change to any plan changes it.
    digest: str = ""
    #: The last version check failed: the next ones run in the background.
    unreachable: bool = False


#: The background version check in flight (at most one), see the module docstring.
_checking: asyncio.Task[None] | None = None


_catalog: _Catalog | None = None


async def _build(collection: Any) -> _Catalog:
    local = local_catalog_changes()
    version = await catalog_version()
    rows = await collection.find({}).to_list(None)
    plans = [SubscriptionPlan.model_validate(row) for row in rows]
    rows.sort(key=lambda row: str(row.get("uid")))
    content = json.dumps(rows, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    now = time.monotonic()
    return _Catalog(
        collection=collection,
        version=version,
        local_changes=local,
        built_at=now,
        checked_at=now,
        by_uid={p.uid: p for p in plans},
        digest=hashlib.sha256(content).hexdigest(),
    )


async def _current() -> _Catalog:
    global _catalog
    collection = SubscriptionPlan.get_motor_collection()
    catalog = _catalog
    now = time.monotonic()
    if (
        catalog is None
        or catalog.collection is not collection
        or catalog.local_changes != local_catalog_changes()
        or now - catalog.built_at > MAX_AGE
    ):
        catalog = _catalog = await _build(collection)
    elif now - catalog.checked_at >= CHECK_INTERVAL:
        catalog.checked_at = now
        if catalog.unreachable:
            _check_in_background(catalog)
            return catalog
        try:
            version = await catalog_version()
        except StoreError as exc:
            # The store is unreachable: the catalog as last checked is served (up to MAX_AGE
            # after it was built); the next checks run in the background.
            log.warning("plan catalog version check failed error=%s", type(exc).__name__)
            catalog.unreachable = True
            return catalog
        if version != catalog.version:
            catalog = _catalog = await _build(collection)
    return catalog


def _check_in_background(catalog: _Catalog) -> None:
    global _checking
    loop = asyncio.get_running_loop()
    if _checking is not None and not _checking.done() and _checking.get_loop() is loop:
        return
    _checking = loop.create_task(_check(catalog))


async def _check(catalog: _Catalog) -> None:
    """A version check off the request path: on success the synchronous checks resume (and a
    new version rebuilds the cache); on failure the catalog stays as it is."""
    global _catalog
    try:
        version = await catalog_version()
        if version != catalog.version:
            rebuilt = await _build(catalog.collection)
            if _catalog is catalog:
                _catalog = rebuilt
    except StoreError as exc:
        log.warning("plan catalog version check failed error=%s", type(exc).__name__)
        return
    except Exception:  # a background task has no caller to raise to
        log.exception("plan catalog version check failed")
        return
    catalog.unreachable = False


async def plan(uid: str | None) -> SubscriptionPlan | None:
    """The plan ``uid`` (archived ones too), or ``None`` when the catalog has none."""
    if not uid:
        return None
    found = (await _current()).by_uid.get(uid)
    if found is None:
        found = await SubscriptionPlan.find_one({"uid": uid})
    return found


async def plans(uids: list[str]) -> dict[str, SubscriptionPlan]:
    """The plans of ``uids`` that exist, by uid."""
    catalog = await _current()
    found = {u: catalog.by_uid[u] for u in uids if u in catalog.by_uid}
    missing = [u for u in uids if u not in found]
    if missing:
        for p in await SubscriptionPlan.find({"uid": {"$in": missing}}).to_list():
            found[p.uid] = p
    return found


async def catalog_digest() -> str:
    """A digest of the catalog as this cache holds it (HTTP entity tags are made from it)."""
    return (await _current()).digest


async def catalog(*, active_only: bool = True) -> list[SubscriptionPlan]:
    """Every plan (``active_only``: those on sale), in the catalog's order: ``sort_order``,
    then uid."""
    found = (await _current()).by_uid.values()
    chosen = [p for p in found if p.active or not active_only]
    return sorted(chosen, key=lambda p: (p.sort_order, p.uid))
