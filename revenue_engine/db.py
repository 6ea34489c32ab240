"""Storage connection: the ONLY module that imports Motor or mongomock-motor.

``open_database(settings)`` picks the backend from ``MONGODB_URI``:

* unset or ``mongomock://…`` → an in-memory mongomock-motor client (the embedded default);
* anything else → a Motor client with explicit timeouts (``store_timeouts``: every operation
  bounded by ``MONGODB_TIMEOUT_MS``, counted from its submission; a monitor that notices a
  silent partition within seconds), so an outage answers within the timeout instead of
  PyMongo's 30 s default and the engine serves again soon after the database is back.

It then runs ``init_beanie`` with every document model, which creates the indexes.
A later move to Beanie 2 + PyMongo's async client touches this file only.

Both drivers are instrumented once per process so the time a request spends awaiting the
database shows as ``db`` in its ``Server-Timing`` header (``timing``).

mongomock checks a unique index on an array field by comparing the whole array, and drops the
``partialFilterExpression`` of indexes created from ``IndexModel``s; MongoDB indexes every element
(a multikey index), so two documents sharing one element collide, and honours the filter. The
embedded store is taught both (``_enforce_multikey_unique``): the plan catalog relies on them to
keep one price lookup key one plan's.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from beanie import init_beanie
from bson import ObjectId
from pydantic import TypeAdapter
from pymongo.errors import DuplicateKeyError, PyMongoError

from revenue_engine import store_timeouts, timing
from revenue_engine.documents import DOCUMENT_MODELS
from revenue_engine.settings import Settings

__all__ = ["Database", "DuplicateKeyError", "StoreError", "connect", "open_database"]

log = logging.getLogger(__name__)

#: Errors that mean "the store is unreachable or failed": callers answer 503 / retryable.
StoreError = PyMongoError


@dataclass(slots=True)
class Database:
    """A connected client and the database the documents live in."""

    client: Any
    database: Any
    in_memory: bool

    async def initialise(self) -> None:
        """Bind every document model to this database and create the indexes."""
        await init_beanie(database=self.database, document_models=list(DOCUMENT_MODELS))

    async def ping(self) -> None:
        """Round-trip to the server; raises ``StoreError`` when it is unreachable."""
        await self.database.command("ping")

    def close(self) -> None:
        self.client.close()


@functools.cache
def _type_adapter(object_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(object_type)


def _parse_object_as(object_type: Any, data: Any) -> Any:
    return _type_adapter(object_type).validate_python(data)


def _reuse_type_adapters() -> None:
    """Beanie 1.x builds a new pydantic ``TypeAdapter`` to parse the id of every inserted
    document (about 0.1 ms each, twice per webhook event); build one per type instead."""
    from beanie.odm import documents, fields

    documents.parse_object_as = _parse_object_as  # type: ignore[attr-defined]
    fields.parse_object_as = _parse_object_as  # type: ignore[attr-defined]


_reuse_type_adapters()


def _instrument_memory_store() -> None:
    """mongomock-motor runs each operation inline in its coroutine methods: time those."""
    import mongomock_motor

    for name in (
        "AsyncCursor",
        "AsyncCommandCursor",
        "AsyncLatentCommandCursor",
        "AsyncMongoMockCollection",
        "AsyncMongoMockDatabase",
    ):
        timing.instrument(getattr(mongomock_motor, name))


def _enforce_multikey_unique() -> None:
    """Make mongomock refuse a document sharing one element of a uniquely indexed array with
    another document, as MongoDB does, with the details MongoDB gives (``keyPattern``,
    ``keyValue``). mongomock rolls the write back when this raises."""
    try:
        from mongomock import filtering, helpers
        from mongomock.collection import Collection

        value_at: Any = helpers.get_value_by_dot
        applies: Any = filtering.filter_applies
        original: Any = Collection._ensure_uniques
        Collection.create_index  # noqa: B018 - the replacement below calls it
    except (ImportError, AttributeError):
        # Another mongomock: keep its behaviour (the catalog's read-check still applies).
        log.warning("mongomock internals changed: multikey unique indexes not enforced")
        return
    if getattr(original, "__multikey__", False):
        return

    def ensure_uniques(self: Any, new_data: dict[str, Any]) -> None:
        original(self, new_data)
        for name, index in self._store.indexes.items():
            _refuse_shared_element(self, name, index, new_data, value_at, applies)

    ensure_uniques.__multikey__ = True  # type: ignore[attr-defined]
    setattr(Collection, "_ensure_uniques", ensure_uniques)  # noqa: B010
    setattr(Collection, "create_indexes", _create_indexes)  # noqa: B010


def _refuse_shared_element(
    collection: Any,
    name: str,
    index: dict[str, Any],
    new_data: dict[str, Any],
    value_at: Any,
    applies: Any,
) -> None:
    """Raise MongoDB's ``DuplicateKeyError`` if ``new_data``'s array under the single-field unique
    index ``name`` shares an element with another document of ``collection`` (a mongomock
    collection; ``value_at`` and ``applies`` are mongomock's dotted-path read and filter test).
    Other indexes, and documents the index's partial filter leaves out, pass."""
    keys = list(index.get("key") or [])
    if not index.get("unique") or len(keys) != 1:
        return
    field = keys[0][0]
    try:
        values = value_at(new_data, field)
    except KeyError:
        return
    partial = index.get("partialFilterExpression")
    if not isinstance(values, list) or (partial is not None and not applies(partial, new_data)):
        return
    query: dict[str, Any] = {field: {"$in": values}, "_id": {"$ne": new_data["_id"]}}
    for other in collection._iter_documents(
        {"$and": [partial, query]} if partial is not None else query
    ):
        held = value_at(other, field)
        held = held if isinstance(held, list) else [held]
        taken = next((v for v in values if v in held), values[0])
        raise DuplicateKeyError(
            f"E11000 duplicate key error index: {name} dup key: {{ {field}: {taken!r} }}",
            11000,
            {"keyPattern": {field: 1}, "keyValue": {field: taken}},
        )


def _create_indexes(self: Any, indexes: list[Any], session: Any = None) -> list[str]:
    """mongomock's ``Collection.create_indexes``, passing each index's options (``unique``,
    ``partialFilterExpression``, …) on to ``create_index``."""
    options = ("expireAfterSeconds", "unique", "sparse", "name", "partialFilterExpression")
    return [
        self.create_index(
            list(index.document["key"].items()),
            session=session,
            **{k: v for k, v in index.document.items() if k in options},
        )
        for index in indexes
    ]


def _plain_values(condition: Any) -> frozenset[Any] | None:
    """The values a plain condition matches: a string or an ObjectId, or ``{"$in": [...]}`` of
    them (types Python and MongoDB compare alike); ``None`` for anything else."""
    if type(condition) is str or type(condition) is ObjectId:
        return frozenset((condition,))
    if type(condition) is dict and len(condition) == 1 and type(condition.get("$in")) is list:
        values = condition["$in"]
        if all(type(v) is str or type(v) is ObjectId for v in values):
            return frozenset(values)
    return None


def _plain(held: Any) -> Any:
    """A stored value as a filter value compares with it: a string (an enum member stored as
    one included, whose hash is not its value's) as a plain string; an ObjectId as it is;
    anything else as nothing a plain filter value equals."""
    if type(held) is str or isinstance(held, ObjectId):
        return held
    if isinstance(held, str):
        return str.__str__(held)
    return _NOTHING


_NOTHING = object()


def _filter_ids(condition: Any) -> list[Any]:
    """The values of a plain ``_id`` condition (see ``_plain_values``), in the order given."""
    return list(condition["$in"]) if type(condition) is dict else [condition]


def _fast_equality_scans() -> None:
    """mongomock matches every document of a scan through its generic filter engine (about
    10 us each, and ``$in`` compares each document with every listed value). A filter of plain
    fields equal to strings or ``$in`` strings and ObjectIds — a unique-index check on insert,
    a lookup by id or key, a batch of documents by ``_id`` — is matched here directly, with
    MongoDB's rule (equal, or an array holding the value): a 1,000-event usage batch checks
    its unique index 1,000 times and settles its events by ``_id``."""
    try:
        from mongomock.collection import Collection
        from mongomock.filtering import filter_applies

        applies: Any = filter_applies
        original: Any = Collection._iter_documents
    except (ImportError, AttributeError):
        log.warning("mongomock internals changed: equality scans not accelerated")
        return
    if getattr(original, "__fast__", False):
        return

    def iter_documents(self: Any, filter: Any) -> Any:
        if type(filter) is not dict or not filter:
            return original(self, filter)
        ids = _plain_values(filter.get("_id"))
        if ids is not None:
            # Documents are stored by _id (never an array): fetch those the filter names and
            # match the whole filter on them only, instead of on every document.
            store = self._store
            named = [store[i] for i in dict.fromkeys(_filter_ids(filter["_id"])) if i in store]
            rest = {k: v for k, v in filter.items() if k != "_id"}
            return (d for d in named if applies(rest, d)) if rest else iter(named)
        if not all(type(k) is str and not k.startswith("$") and "." not in k for k in filter):
            return original(self, filter)
        pairs = []
        for key, condition in filter.items():
            values = _plain_values(condition)
            if values is None:
                return original(self, filter)
            pairs.append((key, values))

        def matches(document: dict[str, Any]) -> bool:
            for key, values in pairs:
                held = document.get(key)
                if type(held) is list:
                    if values.isdisjoint(_plain(v) for v in held):
                        return False
                elif _plain(held) not in values:
                    return False
            return True

        return (d for d in list(self._store.documents) if matches(d))

    iter_documents.__fast__ = True  # type: ignore[attr-defined]
    setattr(Collection, "_iter_documents", iter_documents)  # noqa: B010


def _instrument_motor() -> None:
    """Motor runs every PyMongo call on a thread pool through ``run_on_executor``. Start each
    call's operation timeout at submission (``store_timeouts.anchored``: a call queued behind
    busy threads gets only what is left of it), and time the future it returns, from
    submission to completion (the await as the request sees it)."""
    from motor.frameworks import asyncio as framework

    original: Any = framework.run_on_executor
    if getattr(original, "__timed_db__", False):
        return

    def run_on_executor(loop: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        future = original(loop, store_timeouts.anchored(fn, args), *args, **kwargs)
        timings = timing.current()
        if timings is not None:
            started = time.perf_counter()
            future.add_done_callback(
                lambda _: timing.add_db_time(time.perf_counter() - started, timings)
            )
        return future

    run_on_executor.__timed_db__ = True  # type: ignore[attr-defined]
    framework.run_on_executor = run_on_executor


def _client(settings: Settings) -> tuple[Any, bool]:
    uri = settings.mongodb_uri
    if settings.uses_memory_store or uri is None:  # no URI is the in-memory store
        from mongomock_motor import AsyncMongoMockClient

        _instrument_memory_store()
        _enforce_multikey_unique()
        _fast_equality_scans()
        return AsyncMongoMockClient(tz_aware=True), True
    from motor.motor_asyncio import AsyncIOMotorClient

    _instrument_motor()

    client: Any = AsyncIOMotorClient(
        uri.get_secret_value(),
        tz_aware=True,
        appname="revenue-engine",
        **store_timeouts.client_options(settings.mongodb_timeout_ms),
    )
    return client, False


def open_database(settings: Settings, *, database_name: str | None = None) -> Database:
    """A client for ``settings`` (no I/O yet: Motor connects lazily)."""
    client, in_memory = _client(settings)
    database = client[database_name or settings.mongodb_database]
    return Database(client=client, database=database, in_memory=in_memory)


async def connect(settings: Settings, *, database_name: str | None = None) -> Database:
    """Open the database and initialise Beanie (indexes included) for every document model."""
    database = open_database(settings, database_name=database_name)
    await database.initialise()
    return database
