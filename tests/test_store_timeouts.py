"""The driver options behind ``MONGODB_TIMEOUT_MS`` and the per-operation deadline counted from
submission (the outage behaviour itself is tested end to end in ``e2e/test_store_outage``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, _csot
from pymongo.errors import NetworkTimeout

from revenue_engine import store_timeouts
from revenue_engine.store_timeouts import anchored, client_options


@pytest.fixture
def client() -> Iterator[MongoClient[Any]]:
    # Never connects: nothing here sends an operation.
    with MongoClient("mongodb://127.0.0.1:1/", connect=False, **client_options(200)) as unconnected:
        yield unconnected


def test_every_timeout_is_explicit_and_the_monitor_polls_often() -> None:
    options = client_options(3000)
    assert options["timeoutMS"] == options["serverSelectionTimeoutMS"] == 3000
    assert options["socketTimeoutMS"] == options["waitQueueTimeoutMS"] == 3000
    assert options["connectTimeoutMS"] == store_timeouts.MONITOR_TIMEOUT_MS
    assert client_options(500)["connectTimeoutMS"] == 500
    assert options["heartbeatFrequencyMS"] <= 1000
    assert options["serverMonitoringMode"] == "poll"
    assert options["maxIdleTimeMS"] == store_timeouts.MAX_IDLE_MS
    # PyMongo accepts them as given (an unknown or invalid option would raise here).
    with MongoClient("mongodb://127.0.0.1:1/", connect=False, **options) as client:
        assert client.options.timeout == 3.0
        assert client.options.server_selection_timeout == 3.0


def test_a_job_queued_past_its_deadline_fails_without_running(client: MongoClient[Any]) -> None:
    ran: list[bool] = []
    collection = client["db"]["things"]

    def job(target: Any) -> None:
        ran.append(True)

    queued = anchored(job, (collection,))
    time.sleep(0.25)  # the client's timeout (0.2 s) passes while the job waits for a thread
    with pytest.raises(NetworkTimeout, match=r"no worker thread within 0\.2 s"):
        queued(collection)
    assert ran == []


def test_a_job_gets_what_is_left_of_its_timeout(client: MongoClient[Any]) -> None:
    remaining: list[float | None] = []

    def job(target: Any) -> None:
        remaining.append(_csot.remaining())  # PyMongo's deadline, as the operation sees it

    waits: list[float] = []
    for target in (client, client["db"], client["db"]["things"], client["db"]["things"].find()):
        submitted = time.monotonic()
        queued = anchored(job, (target,))
        time.sleep(0.05)  # queued behind busy threads
        waits.append(time.monotonic() - submitted)
        queued(target)
    assert len(remaining) == 4
    # What is left is the timeout (0.2 s) less the time waited, however long that was.
    for left, waited in zip(remaining, waits, strict=True):
        assert left is not None
        assert 0 < left <= 0.2 - waited + 0.001, (left, waited)


def test_a_job_without_a_client_timeout_is_unchanged() -> None:
    def job() -> None:
        pass

    assert anchored(job, ()) is job
    with MongoClient("mongodb://127.0.0.1:1/", connect=False) as no_timeout:
        assert anchored(job, (no_timeout,)) is job
