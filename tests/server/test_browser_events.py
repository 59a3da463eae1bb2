"""The Events page in a real browser (headless Chromium) against a real `legato
server`: filter by name, then see an event emitted afterwards appear live, its
user data shown as text and its details expandable."""

from __future__ import annotations

from typing import Any

from _browser_support import Stack, wait_for

from legato.client import Client

RID = "legato.resource.id"


def test_filter_events_and_see_a_new_one_appear_live(stack: Stack, page: Any) -> None:
    client = Client()
    client.emit_event("shop.order.placed", {RID: "shop.order.1"}, payload={"total": 3})
    client.emit_event("shop.stock.low", {RID: "shop.item.9"})
    page.goto(stack.url + "/events")
    page.wait_for_selector("tr.event")
    # The stack's own worker and server write events too (legato.worker.started): count ours.
    assert page.locator("tr.event", has_text="shop.").count() == 2

    page.fill("input[name='name']", "shop.order.*")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**/events?name=shop.order.*&resource=")
    assert page.locator("tr.event").count() == 1
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    hostile = "<img src=x onerror=alert(1)>"
    client.emit_event("shop.stock.low", {RID: "shop.item.10"})  # filtered out
    new_id = client.emit_event("shop.order.placed", {RID: "shop.order.2"}, payload={"x": hostile})
    wait_for(
        lambda: page.locator(f"tr.event[data-id='{new_id}']").count() == 1,
        "the new event appears on the page",
        timeout=30,
    )
    rows = page.locator("tr.event")
    assert rows.count() == 2 and rows.first.get_attribute("data-id") == new_id  # newest on top
    assert page.evaluate("window.__same_page") is True
    row = rows.first
    assert "shop.order.2" in row.inner_text() and hostile in row.inner_text()
    assert row.locator("img").count() == 0  # shown as text, not made into markup
    row.locator("summary").click()
    details = row.locator("pre").inner_text()
    assert '"legato.resource.id": "shop.order.2"' in details and '"x":' in details
    # The filtered-out event never showed up.
    assert "shop.item.10" not in page.inner_text("#events")
