"""The web UI's pages and forms through HTTP, on both backends: what they show,
that everything shown is escaped, and that forms refuse forged requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _server_support import paused_deployment_run, run_flow, write_flows
from fastapi.testclient import TestClient

from legato.client import Client
from legato.server import create_app
from legato.server.security import CSRF_COOKIE, SESSION_COOKIE
from legato.states import StateType

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    return write_flows(tmp_path)


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def ui(client: Client) -> Iterator[TestClient]:
    with TestClient(create_app(client)) as http:
        yield http


def csrf_of(http: TestClient) -> str:
    """The CSRF token a page put in this browser's cookie (and its forms)."""
    page = http.get("/login")  # a page that always has a form
    token = http.cookies.get(CSRF_COOKIE)
    assert token and f'value="{token}"' in page.text
    return token


def test_every_page_escapes_what_runs_recorded(ui: TestClient, client: Client, flows: Path) -> None:
    ok = run_flow(client, flows, "doubled", n=2)
    failed = run_flow(client, flows, "broken")
    pages = ["/", "/runs", f"/runs/{ok}", f"/runs/{failed}", "/runs?tag=<i>team</i>"]
    for url in pages:
        answer = ui.get(url)
        assert answer.status_code == 200, url
        assert "<script>alert" not in answer.text and "<i>team" not in answer.text, url
        assert "content-security-policy" in answer.headers
    run_page = ui.get(f"/runs/{ok}").text
    assert "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;" in run_page  # shown as text
    assert "&lt;i&gt;team&lt;/i&gt;" in ui.get("/runs").text
    failed_page = ui.get(f"/runs/{failed}").text
    assert "ValueError: boom &lt;script&gt;" in failed_page and "Traceback" in failed_page


def test_the_run_page_shows_graph_timeline_task_detail_and_an_opened_map(
    ui: TestClient, client: Client, flows: Path
) -> None:
    run_id = run_flow(client, flows, "doubled", n=30)
    page = ui.get(f"/runs/{run_id}").text
    assert "double \u00d730" in page and "30 completed" in page  # the map folded
    assert page.count('<path class="edge data"') == 1  # map -> total, one edge
    assert "total[0]" in page and 'aria-label="timeline of task runs"' in page
    assert "870" in page  # the result preview: 2 * (0 + ... + 29)
    opened = ui.get(f"/runs/{run_id}", params={"group": "double"}).text
    assert opened.count("?task=") >= 30 and "30 task runs" in opened
    total = next(t for t in client.task_runs(run_id) if t.call_key == "total[0]")
    detail = ui.get(f"/runs/{run_id}", params={"task": total.id}).text
    assert "Task run total[0]" in detail and "<pre>870</pre>" in detail
    prefix = ui.get(f"/runs/{run_id[:8]}", follow_redirects=False)
    assert prefix.status_code == 303 and prefix.headers["location"].endswith(run_id)


def test_runs_list_filters_and_pages_with_a_cursor(
    ui: TestClient, client: Client, flows: Path
) -> None:
    flow = client.load_flow(f"{flows}:broken")
    for _ in range(55):
        client.run_flow(flow, {})
    newest = run_flow(client, flows, "doubled", n=1)
    first = ui.get("/runs").text
    assert first.index(newest[:8]) < first.index("broken")
    older = re.search(r'href="(\?before=[^"]+)" rel="next"', first)
    assert older is not None
    second = ui.get("/runs" + older.group(1).replace("&amp;", "&")).text
    listed = set(re.findall(r"/runs/([0-9a-f]{32})", first)) | set(
        re.findall(r"/runs/([0-9a-f]{32})", second)
    )
    assert len(listed) == 56 and 'rel="next"' not in second
    only_doubled = ui.get("/runs", params={"flow": "doubled"}).text
    assert newest in only_doubled and "/runs?flow=broken" not in only_doubled
    by_tag = ui.get("/runs", params={"tag": "nightly", "state": "completed"}).text
    assert newest in by_tag and by_tag.count("badge completed") == 1
    bad = ui.get("/runs", params={"since": "yesterday", "state": "sleeping"})
    assert bad.status_code == 422 and "not a date and time" in bad.text
    assert "unknown state" in bad.text


def test_forms_refuse_requests_without_the_token_or_from_other_sites(
    ui: TestClient, client: Client, flows: Path
) -> None:
    client.deploy(f"{flows}:doubled", name="dbl")
    run = client.trigger("dbl")
    token = csrf_of(ui)
    assert ui.post(f"/runs/{run.id}/cancel").status_code == 403
    assert ui.post(f"/runs/{run.id}/cancel", data={"csrf_token": "guess"}).status_code == 403
    forged = ui.post(
        f"/runs/{run.id}/cancel",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and "another site" in forged.text
    api_forged = ui.post(f"/api/runs/{run.id}/cancel", headers={"Origin": "https://evil.example"})
    assert api_forged.status_code == 403
    assert client.get_run(run.id).state is StateType.SCHEDULED  # nothing changed
    done = ui.post(f"/runs/{run.id}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    assert client.get_run(run.id).state is StateType.CANCELLED


def test_an_approval_form_validates_input_and_the_run_stays_paused(
    ui: TestClient, client: Client, flows: Path
) -> None:
    run = paused_deployment_run(client, flows)
    listing = ui.get("/approvals").text
    assert run.id in listing and 'name="field.approved"' in listing
    token = csrf_of(ui)
    url = f"/runs/{run.id}/resume"
    bad = ui.post(
        url, data={"csrf_token": token, "field.approved": "perhaps", "field.note": "keep me"}
    )
    assert bad.status_code == 422 and "approved" in bad.text and "Not accepted" in bad.text
    assert 'value="keep me"' in bad.text  # what was typed comes back
    assert client.get_run(run.id).state is StateType.PAUSED
    good = ui.post(
        url,
        data={"csrf_token": token, "field.approved": "true", "field.note": "ship it"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and "Input+accepted" in good.headers["location"]
    assert client.get_run(run.id).state is StateType.SCHEDULED


def test_run_now_checks_parameters_against_the_flow(
    ui: TestClient, client: Client, flows: Path
) -> None:
    client.deploy(f"{flows}:doubled", name="dbl", parameters={"n": 4})
    page = ui.get("/deployments/dbl").text
    assert 'name="field.n"' in page and 'value="4"' in page  # the deployment's default
    token = csrf_of(ui)
    bad = ui.post("/deployments/dbl/trigger", data={"csrf_token": token, "field.n": "many"})
    assert bad.status_code == 422 and "&#39;n&#39;" in bad.text and 'value="many"' in bad.text
    assert client.list_runs() == []
    queued = ui.post(
        "/deployments/dbl/trigger",
        data={"csrf_token": token, "field.n": "6"},
        follow_redirects=False,
    )
    assert queued.status_code == 303
    (run,) = client.list_runs()
    assert run.parameters == {"n": 6} and run.id in queued.headers["location"]
    paused = ui.post("/deployments/dbl/pause", data={"csrf_token": token})
    assert paused.status_code == 200 and client.get_deployment("dbl").paused
    assert "Resume schedules" in ui.get("/deployments").text


def test_errors_are_pages_with_the_cli_message(ui: TestClient, client: Client) -> None:
    missing = ui.get("/runs/ffffffff")
    assert missing.status_code == 404 and "no flow run matches" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert ui.get("/deployments/nope").status_code == 404
    assert ui.get("/nothing-here").status_code == 404


def test_with_a_token_the_ui_asks_once_and_keeps_a_session(client: Client, flows: Path) -> None:
    secret = "s3cret-token-value"
    run_id = run_flow(client, flows, "doubled", n=1)
    with TestClient(create_app(client, token=secret)) as http:
        sent = http.get(f"/runs/{run_id}", follow_redirects=False)
        assert sent.status_code == 303 and "/login?next=" in sent.headers["location"]
        login_page = http.get(sent.headers["location"])
        token = http.cookies.get(CSRF_COOKIE)
        assert login_page.status_code == 200 and token
        wrong = http.post("/login", data={"csrf_token": token, "token": "nope", "next": "/"})
        assert wrong.status_code == 401 and http.cookies.get(SESSION_COOKIE) is None
        right = http.post(
            "/login",
            data={"csrf_token": token, "token": secret, "next": f"/runs/{run_id}"},
            follow_redirects=False,
        )
        assert right.status_code == 303 and right.headers["location"] == f"/runs/{run_id}"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and secret not in cookie
        page = http.get(f"/runs/{run_id}")
        assert page.status_code == 200 and secret not in page.text
        # The session reads the API (live updates), but never writes through it.
        assert http.get(f"/api/runs/{run_id}").status_code == 200
        assert http.post(f"/api/runs/{run_id}/cancel").status_code == 401
        elsewhere = http.post(
            "/login",
            data={"csrf_token": token, "token": secret, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert elsewhere.headers["location"] == "/"
        http.post("/logout", data={"csrf_token": token})
        assert http.get("/", follow_redirects=False).status_code == 303


def test_docs_are_served_without_the_internet(ui: TestClient) -> None:
    docs = ui.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert ui.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_no_secret_reaches_a_page_or_an_answer(client: Client, flows: Path) -> None:
    import os
    from urllib.parse import unquote, urlsplit

    secret = "tok-9f8e7d6c5b4a"
    secrets = [secret]
    password = urlsplit(os.environ.get("LEGATO_DATABASE_URL", "")).password
    if password:  # the PostgreSQL backend's URL carries one
        secrets.append(unquote(password))
    run_id = run_flow(client, flows, "doubled", n=2)
    client.deploy(f"{flows}:doubled", name="dbl")
    bearer = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(client, token=secret)) as http:
        token = csrf_of(http)
        http.post("/login", data={"csrf_token": token, "token": secret})
        urls = ["/", "/runs", f"/runs/{run_id}", "/approvals", "/deployments"]
        urls += ["/deployments/dbl", "/workers", "/docs", "/openapi.json"]
        urls += ["/api/health", "/api/stats", f"/api/runs/{run_id}", "/api/deployments"]
        urls += ["/api/store"]
        for url in urls:
            answer = http.get(url, headers=bearer if url.startswith("/api") else {})
            assert answer.status_code == 200, url
            shown = answer.text + str(answer.headers)
            assert all(s not in shown for s in secrets), url


def test_only_allowed_host_names_are_answered(client: Client) -> None:
    with TestClient(create_app(client, allowed_hosts=["127.0.0.1"])) as http:
        rebound = http.get("/api/runs", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert http.get("/api/runs", headers={"Host": "127.0.0.1:4200"}).status_code == 200


def test_the_dashboard_lists_the_latest_runs_and_failures_with_links(
    ui: TestClient, client: Client, flows: Path
) -> None:
    ok = run_flow(client, flows, "doubled", n=2)
    failed = run_flow(client, flows, "broken")
    page = ui.get("/").text
    latest = page.split("<h2>Latest runs</h2>", 1)[1].split("</table>", 1)[0]
    assert f'/runs/{ok}"' in latest and f'/runs/{failed}"' in latest
    failures = page.split("<h2>Latest failures</h2>", 1)[1].split("</table>", 1)[0]
    assert f'/runs/{failed}"' in failures and f'/runs/{ok}"' not in failures
    assert "ValueError: boom &lt;script&gt;" in failures  # why it failed, escaped
    stats = ui.get("/api/stats").json()
    assert [r["id"] for r in stats["recent_failures"]] == [failed]
    assert {r["id"] for r in stats["recent_runs"]} == {ok, failed}
