"""Every page in Chromium at a laptop's, a desktop's and a phone's size: no
console error, nothing wider than the window (a table may scroll in its own
box), and a screenshot of each under var/screenshots/ to look at."""

import re
from pathlib import Path

import pytest
from conftest import app_of
from playwright.sync_api import expect
from polling import wait_for
from test_activity import Backends

from sentinel.extensions import postgres, redis
from sentinel.plugins.dashboard import dashboard
from sentinel.plugins.monitoring import monitoring

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
SIZES = {"1366x900": (1366, 900), "1920x1080": (1920, 1080), "390x844": (390, 844)}
PAGES = {
    "home": "/ui/",
    "activity": "/ui/activity/",
    "dashboard": "/ui/dashboard/",
    "monitoring": "/ui/monitoring/",
    "administration": "/ui/administration/",
    "configuration": "/ui/pgconf/",
    "statements": "/ui/statements/",
    "maintenance": "/ui/maintenance/",
    "maintenance-jobs": "/ui/maintenance/jobs",
    "sources": "/ui/sources/",
    "api": "/ui/api",
    "sign-in": "/ui/login",
}
# A query as long as real ones, with a marker as its 61st to 66th characters:
# it shows only if nothing cuts the text at 60.
MARKER = "PAST60"
LONG_QUERY = (
    "SELECT pg_sleep(30) AS slept /* the layout test's long query".ljust(60)
    + f"{MARKER} and more of it after, as real queries go on */"
)

# The elements sticking out of the window, for the failure message: those
# inside a box that scrolls (a wide table) are that box's business.
OVERFLOWING = """() => {
  const width = window.innerWidth;
  const scrolls = (e) => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
  const inScrollingBox = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) if (scrolls(p)) return true;
    return false;
  };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? `#${e.id}` : "")
    + [...e.classList].map((c) => `.${c}`).join("");
  return [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !inScrollingBox(e))
    .slice(0, 8)
    .map((e) => `${name(e)} right=${Math.round(e.getBoundingClientRect().right)}`);
}"""

# Whether the marker's text is within the window and inside every box that
# could clip it (overflow or an ellipsis): {visible, why}.
MARKER_VISIBLE = """(marker) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  while ((node = walker.nextNode()) && !node.nodeValue.includes(marker)) {}
  if (!node) return {visible: false, why: "not in the page"};
  const range = document.createRange();
  const start = node.nodeValue.indexOf(marker);
  range.setStart(node, start);
  range.setEnd(node, start + marker.length);
  const text = range.getBoundingClientRect();
  if (!text.width) return {visible: false, why: "not drawn"};
  for (let box = node.parentElement; box !== document.body; box = box.parentElement) {
    const style = getComputedStyle(box);
    const name = `${box.tagName}.${box.className}`;
    if (style.display === "none" || style.visibility === "hidden") {
      return {visible: false, why: `hidden by ${name}`};
    }
    if (style.overflowX !== "visible" || style.textOverflow === "ellipsis") {
      const clip = box.getBoundingClientRect();
      const inside = text.left >= clip.left - 1 && text.right <= clip.right + 1
        && text.top >= clip.top - 1 && text.bottom <= clip.bottom + 1;
      if (!inside) {
        const where = `${Math.round(text.left)}-${Math.round(text.right)} px`;
        return {visible: false, why: `cut by ${name} (the marker at ${where})`};
      }
    }
  }
  if (text.left < 0 || text.right > window.innerWidth) {
    return {visible: false, why: "outside the window"};
  }
  return {visible: true, why: ""};
}"""


@pytest.fixture(scope="module")
def collected(service):
    """Three dashboard samples and two monitoring runs in the service's state,
    so that every chart has something to draw."""
    with app_of(service) as app, app.app_context():
        settings = app.config["SENTINEL"]
        for _ in range(3):
            dashboard.collect_and_store(postgres.pool, redis.samples, settings)
        for _ in range(2):
            monitoring.collect_and_store(postgres.pool, redis.samples, settings)
    yield


@pytest.fixture
def backends(pg_connections, pg_cluster):
    backends = Backends(pg_connections, pg_cluster)
    yield backends
    backends.close()


@pytest.fixture
def errors(page):
    """The console errors and uncaught exceptions of the test's page."""
    found = []
    page.on("console", lambda m: m.type == "error" and found.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: found.append(f"exception: {e}"))
    return found


def open_at(page, cookies, name, size):
    page.set_viewport_size(dict(zip(("width", "height"), SIZES[size], strict=True)))
    if name != "sign-in":
        page.context.add_cookies(cookies)
    page.goto(PAGES[name])
    if name != "sign-in":
        expect(page).not_to_have_url(re.compile(r"/ui/login"))  # the cookies sign it in
    page.wait_for_load_state("networkidle")
    if name in ("dashboard", "monitoring"):
        # Drawn: no chart is waiting for the page's first data any more.
        expect(page.locator(".chart-note", has_text="Loading")).to_have_count(0)
    return page


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PAGES)
def test_the_page_fits_the_window_without_errors(page, errors, ui_admin, collected, name, size):
    open_at(page, ui_admin[1], name, size)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-{size}.png", full_page=True)
    assert errors == []
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (widths, page.evaluate(OVERFLOWING))


def test_a_long_query_shows_past_60_characters_at_1366(page, errors, ui_admin, backends):
    assert LONG_QUERY.index(MARKER) == 60
    conn = backends.start(LONG_QUERY)
    wait_for(lambda: backends.is_running(conn, MARKER), what="the query to run")
    open_at(page, ui_admin[1], "activity", "1366x900")
    expect(page.get_by_text(MARKER).first).to_be_attached()
    shown = page.evaluate(MARKER_VISIBLE, MARKER)
    page.screenshot(path=SCREENSHOTS / "activity-long-query-1366x900.png", full_page=True)
    assert shown["visible"], shown["why"]
    assert errors == []
