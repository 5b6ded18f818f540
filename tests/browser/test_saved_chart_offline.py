"""A chart saved as HTML draws in headless Debian chromium with every network request refused."""

from __future__ import annotations

import pytest

import concursus_lab as cl

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_a_saved_timeline_draws_with_no_network(browser, tmp_path):
    timeline = cl.timeline(cl.sample.fixture("messy"))
    page_file = cl.plot.save(timeline, tmp_path / "timeline.html")

    context = browser.new_context(viewport={"width": 1200, "height": 800})
    asked: list[str] = []

    def only_the_file(route):
        asked.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_file)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(page_file.as_uri())
        dots = page.locator(".vega-embed svg g.mark-symbol.role-mark path")
        dots.first.wait_for(timeout=60_000)
        assert dots.count() == timeline.data.shown.height  # one dot per event shown
    finally:
        context.close()
    assert errors == []
    assert asked == [page_file.as_uri()]  # the page asked for nothing else
