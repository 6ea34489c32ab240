"""The embedded store's fast scans (``db._fast_equality_scans``) answer as mongomock's own
filter engine does, and a filter naming documents by ``_id`` looks at those documents only —
a usage batch settles its events and updates its counters by ``_id``, and a scan of every
document per counter held the event loop for seconds."""

from __future__ import annotations

import enum
from typing import Any

import mongomock
import pytest
from bson import ObjectId
from mongomock import filtering

from revenue_engine.db import open_database
from tests.conftest import make_settings


class Status(enum.StrEnum):
    PENDING = "pending"


IDS = [ObjectId() for _ in range(6)]
DOCS: list[dict[str, Any]] = [
    {"_id": IDS[0], "org": "a", "tags": ["x", "y"], "n": 1, "flag": True},
    {"_id": IDS[1], "org": "b", "tags": ["y"], "n": 2, "flag": False},
    {"_id": IDS[2], "org": "a", "tags": [], "n": 3},
    {"_id": IDS[3], "org": 1, "tags": ["z", IDS[0]]},
    {"_id": "s1", "org": "a", "ref": IDS[1], "marks": {"b1": 1}},
    {"_id": "s2", "org": "c", "ref": "x", "marks": {}},
    # An enum member as a document may hold it in the embedded store: its hash is not its
    # value's, yet it equals the string.
    {"_id": "s3", "org": "a", "status": Status.PENDING, "tags": [Status.PENDING]},
]
FILTERS: list[dict[str, Any]] = [
    {"_id": IDS[0]},
    {"_id": "s1"},
    {"_id": "nowhere"},
    {"_id": {"$in": [IDS[2], "s2", IDS[2], "nowhere"]}},
    {"_id": {"$in": []}},
    {"_id": {"$in": ["s1", "s2"]}, "marks.b1": {"$exists": False}},
    {"_id": "s1", "org": "a"},
    {"_id": "s1", "org": "b"},
    {"org": "a"},
    {"org": {"$in": ["a", "c"]}},
    {"tags": "y"},
    {"tags": {"$in": ["z", "q"]}},
    {"tags": IDS[0]},
    {"ref": {"$in": [IDS[1], "x"]}},
    {"org": "a", "tags": "x"},
    {"org": {"$in": [1]}},
    {"flag": {"$in": [True]}},
    {"org": "a", "status": "pending"},
    {"status": {"$in": ["pending", "paid"]}},
    {"tags": "pending"},
]


@pytest.fixture
def collection() -> Any:
    open_database(make_settings())  # installs the embedded store's patches
    coll = mongomock.MongoClient().db.scans
    coll.insert_many([dict(d) for d in DOCS])
    return coll


@pytest.mark.parametrize("query", FILTERS, ids=[str(f) for f in FILTERS])
def test_fast_scans_answer_as_the_filter_engine(collection: Any, query: dict[str, Any]) -> None:
    expected = sorted((str(d["_id"]) for d in DOCS if filtering.filter_applies(query, d)), key=str)
    assert sorted((str(d["_id"]) for d in collection.find(query)), key=str) == expected


def test_a_filter_by_id_looks_at_the_named_documents_only(
    collection: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection.insert_many([{"_id": f"c{n}", "used": 0, "marks": {}} for n in range(500)])
    looked: list[Any] = []
    real = filtering.filter_applies

    def counting(query: Any, document: Any) -> Any:
        looked.append(document.get("_id"))
        return real(query, document)

    monkeypatch.setattr("mongomock.collection.filter_applies", counting)
    monkeypatch.setattr("mongomock.filtering.filter_applies", counting)
    result = collection.update_one(
        {"_id": "c7", "marks.b9": {"$exists": False}}, {"$inc": {"used": 5}}
    )
    assert result.matched_count == 1
    assert (
        collection.update_many({"_id": {"$in": ["c1", "c2"]}}, {"$set": {"used": 1}}).matched_count
        == 2
    )
    assert len(looked) <= 3
