"""Fixtures of the browser tests: a real server and worker, and a headless Chromium page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser_support import CHROMIUM, CHROMIUM_ARGS, Stack


@pytest.fixture
def stack(tmp_path: Path, legato_home: Path) -> Iterator[Stack]:
    started = Stack(tmp_path)
    started.up()
    yield started
    started.down()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: ./scripts/test.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        opened = context.new_page()
        opened.set_default_timeout(30_000)
        dialogs: list[str] = []
        opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        opened.dialogs = dialogs
        yield opened
        context.close()
        browser.close()
    assert dialogs == [], f"a script ran from recorded text: {dialogs}"
