"""Events over HTTP: ``POST /api/events``, ``GET /api/events`` (paged back),
``GET /api/events/stream`` (from a cursor), and the Events page, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server_support import run_flow, write_flows
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app

pytestmark = pytest.mark.usefixtures("backend")
RID = "legato.resource.id"


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def api(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def one(name: str, resource: str = "r", **extra: object) -> dict[str, object]:
    return {"event": name, "resource": {RID: resource}, **extra}


def test_post_one_event_or_a_batch_with_prefect_field_names(
    api: TestClient, client: Client
) -> None:
    single = api.post(
        "/api/events",
        json={
            "event": "warehouse.table.refreshed",
            "resource": {"prefect.resource.id": "warehouse.table.orders"},
            "related": [{RID: "etl", "prefect.resource.role": "upstream"}],
            "payload": {"rows": 1200},
            "id": "evt-1",
            "occurred": "2026-11-30T08:00:00Z",
        },
    )
    assert single.status_code == 202, single.text
    assert single.json() == {"ids": ["evt-1"]}
    stored = client.get_event("evt-1")
    assert stored is not None
    assert stored.resource == {RID: "warehouse.table.orders"}
    assert stored.related_ids("upstream") == ["etl"]
    assert stored.payload == {"rows": 1200}
    assert stored.occurred.isoformat() == "2026-11-30T08:00:00+00:00"

    batch = api.post("/api/events", json=[one("a.one"), one("a.two", id="evt-1")])
    assert batch.status_code == 202, batch.text
    ids = batch.json()["ids"]
    assert len(ids) == 2 and ids[1] == "evt-1"
    # evt-1 was stored before: it keeps its first event.
    kept = client.get_event("evt-1")
    assert kept is not None and kept.event == "warehouse.table.refreshed"
    assert [e.event for e in client.list_events()] == ["a.one", "warehouse.table.refreshed"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"event": "x", "resource": {"a": "b"}}, f'needs a "{RID}" label'),
        (one("bad name"), "invalid event name"),
        (one("x", related=[{RID: "y"}]), "legato.resource.role"),
        ([one("ok"), one("x", payload={"big": "x" * 300_000})], "event #2: the event payload"),
        (one("x", surprise=1), "surprise"),
        ([], "at least 1 item"),
        ([one(f"n{i}") for i in range(1001)], "at most 1000 items"),
        (one("x", resource="\ud800"), "lone surrogate"),
    ],
)
def test_a_bad_event_is_refused_with_the_reason_and_nothing_is_stored(
    api: TestClient, client: Client, body: object, message: str
) -> None:
    # Sent as ASCII JSON text: a lone surrogate arrives escaped, as a client could send it.
    answer = api.post(
        "/api/events", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"]
    assert client.list_events() == []


def test_list_newest_first_filtered_and_paged_back(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    for i in range(5):
        client.emit_event(f"batch.step{i}", {RID: "job"}, payload={"i": i})
    client.emit_event(
        "other.thing", {RID: "elsewhere"}, [{RID: "job", "legato.resource.role": "r"}]
    )
    run_id = run_flow(client, write_flows(tmp_path), "doubled", n=1)

    first = api.get("/api/events", params={"name": "batch.*", "limit": 2}).json()
    assert [e["event"] for e in first["events"]] == ["batch.step4", "batch.step3"]
    second = api.get(
        "/api/events", params={"name": "batch.*", "limit": 2, "before": first["next"]}
    ).json()
    assert [e["event"] for e in second["events"]] == ["batch.step2", "batch.step1"]
    last = api.get(
        "/api/events", params={"name": "batch.*", "limit": 2, "before": second["next"]}
    ).json()
    assert [e["event"] for e in last["events"]] == ["batch.step0"] and last["next"] is None

    about_job = api.get("/api/events", params={"resource": "job", "limit": 100}).json()["events"]
    assert about_job[0]["event"] == "other.thing" and len(about_job) == 6
    names = ["batch.step0", "other.thing"]
    both = api.get("/api/events", params={"name": names}).json()["events"]
    assert [e["event"] for e in both] == ["other.thing", "batch.step0"]
    # The events a flow run wrote with its state changes, by the run's resource id.
    of_run = api.get("/api/events", params={"resource": f"legato.flow-run.{run_id}"}).json()
    assert of_run["events"][0]["event"] == "legato.flow-run.Completed"
    future = api.get("/api/events", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert future == {"events": [], "next": None}
    assert api.get("/api/events", params={"name": "a*b"}).status_code == 422
    assert api.get("/api/events", params={"before": 0}).status_code == 422


def test_stream_answers_new_events_after_a_cursor_and_misses_none(
    api: TestClient, client: Client
) -> None:
    client.emit_event("before.start", {RID: "r"})
    start = api.get("/api/events/stream").json()
    assert start["events"] == []
    cursor = start["cursor"]
    assert api.get("/api/events/stream", params={"after": cursor}).json()["events"] == []

    client.emit_event("watched.one", {RID: "r"})
    client.emit_event("ignored.one", {RID: "r"})
    client.emit_event("watched.two", {RID: "other"})
    client.emit_event("watched.three", {RID: "r"})
    params = {"after": cursor, "name": "watched.*", "resource": "r"}
    answer = api.get("/api/events/stream", params=params).json()
    assert [e["event"] for e in answer["events"]] == ["watched.one", "watched.three"]
    # From the new cursor: nothing again, then only what came after.
    params["after"] = answer["cursor"]
    assert api.get("/api/events/stream", params=params).json()["events"] == []
    client.emit_event("watched.four", {RID: "r"})
    later = api.get("/api/events/stream", params=params).json()
    assert [e["event"] for e in later["events"]] == ["watched.four"]

    bad = api.get("/api/events/stream", params={"after": "not-a-cursor"})
    assert bad.status_code == 422 and "not a cursor of this store" in bad.json()["detail"]


def test_the_events_page_lists_filters_escapes_and_links_from_a_run(
    api: TestClient, client: Client, tmp_path: Path
) -> None:
    client.emit_event(
        "page.<b>bold</b>",
        {RID: "<script>alert(1)</script>"},
        payload={"html": "<img src=x onerror=alert(1)>"},
    )
    client.emit_event("page.other", {RID: "quiet"})
    page = api.get("/events")
    assert page.status_code == 200
    html = page.text
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '/events" >Events</a>' in api.get("/").text  # in the navigation
    assert 'data-cursor="' in html  # the first page is live

    filtered = api.get("/events", params={"name": "page.other"}).text
    assert "quiet" in filtered and "&lt;script&gt;" not in filtered
    by_resource = api.get("/events", params={"resource": "quiet"}).text
    assert "page.other" in by_resource and "&lt;b&gt;" not in by_resource
    bad = api.get("/events", params={"name": "a*b", "before": "x"})
    assert bad.status_code == 422 and "prefix ending in *" in bad.text

    run_id = run_flow(client, write_flows(tmp_path), "doubled", n=1)
    run_page = api.get(f"/runs/{run_id}").text
    link = f"/events?resource=legato.flow-run.{run_id}"
    assert link in run_page
    of_run = api.get(link).text
    assert "legato.flow-run.Completed" in of_run and "page.other" not in of_run
