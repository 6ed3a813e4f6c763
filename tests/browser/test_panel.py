"""A real Chromium against a real gunicorn: the panel registers and cancels in place, and
the organizer's "Saved." shows on the page the save lands on, never on a later one.

Runs on the SQLite backend only (the race tests cover both databases). Set
TURNOUT_SCREENSHOT=docs/screenshot.png to refresh the README's screenshot.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.app import PASSWORD
from tests.support.live import start_live_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1200, "height": 800}
TIMEOUT_MS = 15_000
# Installed before any page script runs, so a violation anywhere on any page is reported.
CSP_RECORDER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__turnoutCsp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
                      + ` at ${e.sourceFile}:${e.lineNumber} ${e.sample || ""}`);
});
"""
# Chromium asks for /favicon.ico on its own and logs the 404 as a console error; the app
# has no icon yet. Only that exact request is forgiven, nothing the page itself does.
FAVICON_404 = "Failed to load resource: the server responded with a status of 404"
HTMX_IDLE = ("() => !document.querySelector("
             "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


@pytest.fixture(scope="module")
def browser_server(database_url, redis_url, tmp_path_factory):
    """A live gunicorn on SQLite; skipped (not failed) without Chromium or on PostgreSQL."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the browser test runs on the SQLite backend only")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    server = start_live_server(database_url, redis_url,
                               workdir=tmp_path_factory.mktemp("gunicorn"))
    yield server
    server.stop()


@pytest.fixture
def screenshot_path(tmp_path) -> Path:
    wanted = os.environ.get("TURNOUT_SCREENSHOT")
    return Path(wanted) if wanted else tmp_path / "panel.png"


def _event_with_a_crowd(app, make_user, make_event):
    """An event that looks like a real one: an organizer, a description, some seats taken."""
    from webapp.registrations import services

    organizer = make_user(email="ada@turnout.example", name="Ada Lovelace", organizer=True)
    starts = (datetime.now(UTC) + timedelta(days=9)).replace(hour=18, minute=30, second=0,
                                                             microsecond=0)
    event = make_event(
        capacity=40, organizer=organizer, starts_at=starts, ends_at=starts + timedelta(hours=2),
        title="Hypermedia Night: htmx in Production",
        location="Hall B, Community Centre, 12 Market Street",
        description=(
            "Three short talks on shipping server-rendered apps with htmx: progressive "
            "enhancement, CSRF done right, and surviving a thousand clicks a second.\n\n"
            "Doors open 30 minutes early. Snacks and drinks are on the house."),
    )
    with app.app_context():
        for _ in range(13):
            services.register(event.id, make_user().id)
    return event


def test_register_and_cancel_in_place(app, browser_server, make_user, make_event, counts,
                                      screenshot_path):
    from playwright.sync_api import expect, sync_playwright

    event = _event_with_a_crowd(app, make_user, make_event)
    person = make_user(email="grace@turnout.example", name="Grace Hopper")
    base = browser_server.url
    mark = browser_server.log_mark()
    problems: list[str] = []
    csp: list[str] = []
    loads: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1,
                                          locale="en-GB", timezone_id="UTC")
            context.set_default_timeout(TIMEOUT_MS)
            context.expose_function("__turnoutCsp", lambda text: csp.append(text))
            context.add_init_script(CSP_RECORDER)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and not (
                m.text.startswith(FAVICON_404) and m.location.get("url") == f"{base}/favicon.ico"
            ) and problems.append(f"console error: {m.text} ({m.location})"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(
                f"HTTP {r.status} {r.request.method} {r.url}"))
            page.on("load", lambda p: loads.append(p.url))

            # Sign in through the form, coming back to the event.
            page.goto(f"{base}/login?next=/events/{event.id}")
            page.locator("input[name=email]").fill(person.email)
            page.locator("input[name=password]").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/events/{event.id}")
            panel = page.locator("#registration-panel")
            register = panel.get_by_role("button", name="Register", exact=True)
            expect(register).to_be_visible()

            # Register: the page must change in place, not load again.
            page.evaluate("window.__marker = 1")
            loads_before = len(loads)
            register.click()
            page.wait_for_url(f"{base}/events/{event.id}/confirmation")
            expect(panel).to_contain_text("You are already registered")
            expect(panel.get_by_role("button", name="Cancel registration")).to_be_visible()
            expect(page.get_by_role("heading", name="You're in!")).to_be_visible()
            seats = page.locator(f"#seats-{event.id}")
            expect(seats).to_have_text("26 of 40 seats left")
            page.wait_for_function(HTMX_IDLE)
            assert page.evaluate("window.__marker") == 1, "Register caused a full page load"
            assert len(loads) == loads_before, loads
            assert counts(event.id)["confirmed"] == 14

            page.mouse.move(0, 0)  # no hover effects in the picture
            page.screenshot(path=str(screenshot_path))

            # Cancel: back to Register, still without a page load.
            panel.get_by_role("button", name="Cancel registration").click()
            expect(register).to_be_visible()
            expect(panel).to_contain_text("Your registration is cancelled")
            expect(panel).not_to_contain_text("You are already registered")
            # The seat figure beside the panel follows the panel (out-of-band swap).
            expect(seats).to_have_text("27 of 40 seats left")
            page.wait_for_function(HTMX_IDLE)
            assert page.evaluate("window.__marker") == 1, "Cancel caused a full page load"
            assert len(loads) == loads_before, loads
            assert counts(event.id)["confirmed"] == 13

            seen_problems, seen_csp = list(problems), list(csp)
            # Prove the recorder hears a violation: an inline script must be refused.
            page.evaluate("""() => { const s = document.createElement("script");
                                     s.textContent = "window.__inline = 1";
                                     document.body.append(s); }""")
            for _ in range(50):  # the event reaches Python asynchronously
                if csp:
                    break
                page.wait_for_timeout(100)
            assert csp, "the CSP recorder heard nothing: it cannot vouch for zero violations"
            assert page.evaluate("window.__inline") is None
        finally:
            browser.close()

    assert seen_problems == []
    assert seen_csp == []
    assert screenshot_path.stat().st_size > 10_000
    assert browser_server.problems_since(mark) == []


def test_saved_shows_where_the_save_lands_and_never_later(app, browser_server, make_user,
                                                          make_event):
    from playwright.sync_api import expect, sync_playwright

    organizer = make_user(email="olivia@turnout.example", name="Olivia Host", organizer=True)
    event = make_event(organizer=organizer, title="Pottery night")
    base = browser_server.url
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: m.type == "error" and not m.text.startswith(
                FAVICON_404) and problems.append(f"console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(f"{base}/login?next=/organizer/events/{event.id}/edit")
            page.locator("input[name=email]").fill(organizer.email)
            page.locator("input[name=password]").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/organizer/events/{event.id}/edit")

            # Save through htmx: HX-Location brings the event's page, and the message with it.
            page.evaluate("window.__marker = 1")
            page.locator("input[name=title]").fill("Pottery night, second round")
            page.get_by_role("button", name="Save changes").click()
            page.wait_for_url(f"{base}/organizer/events/{event.id}")
            expect(page.locator("#messages")).to_have_text("Saved.")
            expect(page.get_by_role("heading", name="Pottery night, second round")).to_be_visible()
            page.wait_for_function(HTMX_IDLE)
            assert page.evaluate("window.__marker") == 1, "the save caused a full page load"

            # The next page loaded in full has nothing left over to say.
            page.goto(f"{base}/organizer/")
            expect(page.get_by_role("heading", name="Your events")).to_be_visible()
            expect(page.locator("#messages")).to_have_text("")
        finally:
            browser.close()

    assert problems == []
