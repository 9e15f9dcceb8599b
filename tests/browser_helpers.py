"""Open a static site in headless Chromium, as a reader would, and record what each page does.

Used by test_browser.py. Chromium is driven by Playwright for Python, launched on the system's
Chromium (`find_chromium`: $CHROMIUM, else Debian's package) through `executable_path`, so no
browser is downloaded: `playwright install` is never needed.

    with Chromium() as browser, serve(site) as base:
        report = browser.visit(base + "index.html")
        console_problems(report), outside_requests(report), figure_problems(report, 3), math_problems(report)
        # a chapter page: code blocks that scroll, unfolded code, the injected cell, figures' width
        wide_block_problems(report), fold_problems(report), injected_problems(report), figure_width_problems(report)

The check functions return readable lines (page, message, URL), empty when all is well.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Only Playwright's install paths download browsers, and nothing here calls them; the variable
# makes them skip the download should anything do so.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:    # test_browser.py skips and says how to install it
    sync_playwright = None
    PlaywrightError = RuntimeError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
WIDTH, HEIGHT = 1280, 900      # CSS pixels of the window; screenshots cover the whole page height

# Flags that keep Chromium off the network: no background services, no component or safe-browsing
# updates, no sync, no default apps; every host name resolves to nothing except the loopback
# address, and any request that still escapes goes to a proxy on a closed local port.
# Loopback addresses bypass a fixed proxy by default, so the local server is reached directly.
# Playwright adds its own (headless, a pipe to talk over, a fresh profile); these come after them.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-breakpad",
    "--no-pings", "--metrics-recording-only", "--safebrowsing-disable-auto-update",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--hide-scrollbars", "--mute-audio", "--force-color-profile=srgb",
    f"--window-size={WIDTH},{HEIGHT}",
]
# Passed as one --disable-features with those Playwright passes: Chromium obeys only the last
# --disable-features on its command line, so ours, given alone, would switch Playwright's back on.
DISABLED_FEATURES = ["Translate", "OptimizationHints", "MediaRouter", "DialMediaRouteProvider",
                     "AutofillServerCommunication"]
_features_off: list[str] = []    # DISABLED_FEATURES and Playwright's, read from the first launch

# Run in the page once it has loaded: wait for MathJax and every image, then describe the page.
# Notebook outputs are the <img> inside myst-nb's div.cell_output; math is Sphinx's .math elements
# (the only ones MathJax is configured to process).
INSPECT_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const facts = {mathjax: null};
  const script = [...document.scripts].find(s => /mathjax/i.test(s.src));
  // a MathJax that the server refused will not start: no need to wait for it
  const refused = () => performance.getEntriesByName(script.src).some(e => e.responseStatus >= 400);
  if (script) {
    for (let i = 0; i < 400 && !(window.MathJax && MathJax.startup && MathJax.startup.promise) && !refused(); i++)
      await sleep(50);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; facts.mathjax = 'typeset'; }
      catch (e) { facts.mathjax = 'failed: ' + e; }
    } else facts.mathjax = refused() ? 'could not be loaded' : 'did not start within 20 s';
  }
  for (const img of document.images) img.loading = 'eager';
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  await document.fonts.ready;

  // An image counts as blank when a 32x32 downsample of it has a single colour.
  const canvas = document.createElement('canvas'); canvas.width = canvas.height = 32;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const blank = img => {
    try {
      ctx.clearRect(0, 0, 32, 32); ctx.drawImage(img, 0, 0, 32, 32);
      const d = ctx.getImageData(0, 0, 32, 32).data;
      for (let i = 4; i < d.length; i += 4)
        if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2] || d[i+3] !== d[3]) return false;
      return true;
    } catch (e) { return null; }
  };
  // What a reader sees without a click: laid out, not hidden by CSS, and not folded in a closed <details>
  // (whose summary stays in view).
  const folded = e => {
    const closed = 'details:not([open])';
    for (let d = e.closest(closed); d; d = d.parentElement && d.parentElement.closest(closed)) {
      const summary = d.querySelector(':scope > summary');
      if (!(summary && summary.contains(e))) return true;
    }
    return false;
  };
  const seen = e => !!e && e.getClientRects().length > 0 && !folded(e)
      && e.checkVisibility({visibilityProperty: true, opacityProperty: true});
  // The text column: the article's content box, which myst-nb's cells fill
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const pad = getComputedStyle(article);
  facts.column = Math.round(article.clientWidth - parseFloat(pad.paddingLeft) - parseFloat(pad.paddingRight));

  facts.images = [...document.images].map(img => ({
    src: img.getAttribute('src'), url: img.currentSrc || img.src,
    output: !!img.closest('.cell_output'),
    shown: seen(img) ? Math.round(img.getBoundingClientRect().width) : 0,
    width: img.naturalWidth, height: img.naturalHeight,
    blank: img.naturalWidth > 0 ? blank(img) : null,
  }));

  const maths = [...document.querySelectorAll('.math')];
  facts.math = maths.length;
  facts.math_untypeset = maths.filter(m => !m.querySelector('mjx-container'))
                              .map(m => m.textContent.trim().slice(0, 80));
  facts.mjx_containers = document.querySelectorAll('mjx-container').length;
  facts.math_errors = [...document.querySelectorAll('mjx-container')]
      .map(c => c.querySelector('[data-mjx-error]') || c.querySelector('mjx-merror')).filter(e => e)
      .map(e => e.getAttribute('data-mjx-error') || e.textContent.trim().slice(0, 80));

  // TeX a reader would see raw: delimiters left in text outside code, scripts and math elements
  // (math elements left untypeset are reported above).
  const skip = 'script, style, pre, code, textarea, mjx-container, mjx-assistive-mml, .highlight, .math';
  const raw = [];
  const pattern = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$(?!\s)[^$\n]*?\\[A-Za-z]+[^$\n]*\$/g;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    for (const m of n.textContent.matchAll(pattern))
      raw.push(n.textContent.slice(Math.max(0, m.index - 30), m.index + 50).replace(/\s+/g, ' ').trim());
  }
  facts.raw_tex = [...new Set(raw)];

  // Horizontal overflow at the window's width: the page itself, and any table of the text wider than the column
  // it sits in. Code blocks and notebook outputs (data frames) scroll inside their own box by design and are not
  // counted; a table of the text that needs scrolling is (a reader loses its last columns).
  const root = document.documentElement;
  facts.page_overflow = root.scrollWidth > root.clientWidth + 1 ? root.scrollWidth - root.clientWidth : 0;
  facts.wide_tables = [...document.querySelectorAll('table')].filter(t => !t.closest('pre, .highlight, .cell_output'))
      .map(t => {
        const box = t.closest('.table-wrapper, .pst-scrollable-table-container') || t.parentElement;
        return {over: Math.round(t.scrollWidth - box.clientWidth),
                head: (t.querySelector('th, td') || t).textContent.trim().slice(0, 40)};
      }).filter(t => t.over > 1);
  // Boxes of the text that a reader would scroll sideways, when shown: a code block (pre), or any box that
  // scrolls (a data frame, display math) with content wider than itself. Tables of the text (outside notebook
  // outputs) are measured above.
  const tagsOf = cell => cell ? [...cell.classList].filter(c => c.startsWith('tag_')).map(c => c.slice(4)) : [];
  const firstLine = e => (e ? e.textContent.trim().split('\n')[0] : '').slice(0, 60);
  facts.wide_blocks = [...article.querySelectorAll('*')]
      .filter(e => e.closest('.cell_output') || !e.closest('.table-wrapper, .pst-scrollable-table-container'))
      .filter(e => e.scrollWidth > e.clientWidth + 1
                   && (e.tagName === 'PRE' || ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)))
      .filter(seen)
      .map(e => {
        const cell = e.closest('div.cell');
        const kind = e.tagName === 'PRE' ? 'pre' : e.querySelector('table') ? 'table' : e.tagName.toLowerCase();
        return {over: e.scrollWidth - e.clientWidth, room: e.clientWidth, tag: kind,
                cell: cell ? (e.closest('.cell_output') ? 'output' : 'input') : null, tags: tagsOf(cell),
                head: firstLine(cell ? cell.querySelector('.cell_input') || e : e),
                longest: Math.max(0, ...e.textContent.split('\n').map(l => l.length))};
      });
  // The code cells of a notebook page (myst-nb's div.cell), in order: their tags, and whether their input and
  // outputs show, are folded behind a toggle, or are hidden
  const state = e => !e ? 'none' : seen(e) ? 'shown' : folded(e) ? 'folded' : 'hidden';
  facts.cells = [...document.querySelectorAll('div.cell')].map(cell => {
    const input = cell.querySelector('.cell_input'), outputs = [...cell.querySelectorAll('.cell_output')];
    return {tags: tagsOf(cell), input: state(input), head: firstLine(input),
            outputs: outputs.map(state), toggle: [...cell.querySelectorAll('details > summary')].some(seen)};
  });
  // papermill's injected cell, by its tag or by the comment papermill opens it with, wherever it shows
  facts.injected_shown = [...document.querySelectorAll('div.cell.tag_injected-parameters, pre')]
      .filter(e => e.tagName !== 'PRE' || /^# Parameters\n/.test(e.textContent)).filter(seen)
      .map(e => firstLine(e.tagName === 'PRE' ? e : e.querySelector('.cell_input') || e));
  // Links to other hosts (never followed here), and the header's dropdown buttons a reader sees
  facts.links_out = [...new Set([...document.querySelectorAll('a[href]')].map(a => a.href)
      .filter(h => /^https?:/.test(h) && new URL(h).host !== location.host))];
  facts.header_dropdowns = [...document.querySelectorAll('.article-header-buttons button.dropdown-toggle')]
      .filter(b => b.offsetParent !== null).map(b => b.getAttribute('aria-label'));
  facts.title = document.title;
  facts.location = location.href;
  return facts;
})()
"""


# ---- the local server ----------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a tab closed mid-transfer (broken pipe): the browser's side is what the tests check


@contextlib.contextmanager
def serve(root: Path):
    """Serve ROOT on 127.0.0.1 at a free port from a thread; yields the base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---- Chromium through Playwright -------------------------------------------------------------

def find_chromium() -> str | None:
    """$CHROMIUM, else Debian's chromium binary (skipping the /usr/bin wrapper, which adds
    flags of its own such as --enable-remote-extensions), else a chromium/chrome on PATH."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium",
                  shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class BrowserError(RuntimeError):
    pass


@dataclass
class PageReport:
    """What one page did in the browser. Lists hold readable lines; facts is INSPECT_JS's result."""
    page: str
    url: str
    console: list[str] = field(default_factory=list)       # console.error/assert, uncaught exceptions
    log_errors: list[str] = field(default_factory=list)    # browser log errors: failed loads, CSP, ...
    failed: list[str] = field(default_factory=list)        # HTTP status >= 400 or a network failure
    requests: list[str] = field(default_factory=list)      # every URL requested, in order
    documents: list[str] = field(default_factory=list)     # the tab's documents: more than one after a redirect
    facts: dict = field(default_factory=dict)
    seconds: float = 0.0
    screenshot: Path | None = None


class _Recorder:
    """What one tab did, in the order Playwright reports it. Each entry carries the number of the
    document it belongs to (1 for the first the tab commits to): a request's, the document that
    made it (a main-frame navigation request: the one it brings); a log line about a URL, that of
    the request for it; anything else, the document showing when it came."""

    def __init__(self, context, tab):
        self.tab, self.events, self.documents = tab, [], []
        self.doc: dict = {}               # request (Playwright's object, or DevTools' id) -> document
        self.url_doc: dict[str, int] = {}     # URL -> document of its latest request
        self.open: set = set()            # requests neither finished nor failed
        self.navigations: set = set()     # main-frame navigation requests
        self.navigating = False           # one of them has not committed yet
        self.loaded_doc = 0               # the last document that fired its load event
        context.on("request", self._request)
        context.on("requestfinished", lambda r: self.open.discard(r))
        context.on("requestfailed", self._failed)
        context.on("response", lambda r: self._status(r.request, r.url, r.status, r.status_text))
        context.on("console", self._console)
        context.on("weberror", lambda e: self._add("uncaught", "uncaught " + _error_text(e.error)))
        tab.on("framenavigated", self._navigated)
        tab.on("load", lambda _: setattr(self, "loaded_doc", len(self.documents)))
        # Playwright leaves requests for /favicon.ico out of its events (the browser makes them,
        # not the page); the tab's DevTools network events still show them.
        self.favicons: dict[str, str] = {}    # DevTools' request id -> URL
        cdp = context.new_cdp_session(tab)
        cdp.on("Network.requestWillBeSent", self._favicon)
        cdp.on("Network.responseReceived", self._favicon_response)
        cdp.on("Network.loadingFailed", self._favicon_failed)
        cdp.send("Network.enable")

    def _add(self, kind: str, line: str, key=None, doc: int | None = None):
        doc = self.doc[key] if key is not None else len(self.documents) if doc is None else doc
        self.events.append((kind, doc, line))

    def _new(self, key, url: str, doc: int):
        self.doc[key] = self.url_doc[url] = doc
        self._add("request", url, key)

    def _request(self, request):
        with contextlib.suppress(PlaywrightError):    # a service worker's request has no frame
            if request.is_navigation_request() and request.frame.parent_frame is None:
                self.navigations.add(request)
                self.navigating = True
        self.open.add(request)
        self._new(request, request.url, len(self.documents) + (request in self.navigations))

    def _favicon(self, event: dict):
        url = event["request"]["url"]
        if url.endswith("/favicon.ico") and event["requestId"] not in self.favicons:
            self.favicons[event["requestId"]] = url
            self._new(event["requestId"], url, len(self.documents))

    def _favicon_response(self, event: dict):
        if event["requestId"] in self.favicons:
            r = event["response"]
            self._status(event["requestId"], r["url"], r["status"], r.get("statusText", ""))

    def _favicon_failed(self, event: dict):
        if event["requestId"] in self.favicons and not event.get("canceled"):
            self._add("failed", f"{self.favicons[event['requestId']]}: {event.get('errorText', 'failed')}",
                      event["requestId"])

    def _status(self, key, url: str, status: int, text: str):
        if status >= 400:
            self._add("failed", f"{url}: HTTP {status} {text}".rstrip(), key)

    def _failed(self, request):
        self.open.discard(request)
        why = request.failure or "failed"
        if why != "net::ERR_ABORTED":     # ABORTED: cancelled, by a tab closing or a document replacing this one
            self._add("failed", f"{request.url}: {why}", request)
        elif request in self.navigations:    # an aborted navigation commits nothing
            self.navigating = False

    def _console(self, msg):
        if msg.type not in ("error", "assert"):
            return
        url, line = msg.location.get("url"), msg.location.get("lineNumber", 0)
        if msg.args:     # console.error() or console.assert() in a script
            self._add("console", f"console.{msg.type}: {msg.text}" + (f" ({url}:{line + 1})" if url else ""))
        else:            # the browser's own log: failed loads, CSP, ...
            self._add("log", f"log: {msg.text}" + (f" ({url})" if url else ""), doc=self.url_doc.get(url))

    def _navigated(self, frame):
        # a new document in the tab; a change within one (pushState, an #anchor) comes without a request
        if frame == self.tab.main_frame and self.navigating:
            self.navigating = False
            self.documents.append(frame.url)

    def loaded(self) -> bool:
        """The tab's current document has fired its load event, and no navigation is pending."""
        return self.loaded_doc == len(self.documents) and not self.navigating

    def busy(self) -> bool:
        """A request of the current document is open."""
        return any(self.doc[r] == len(self.documents) for r in self.open)

    def fill(self, report: PageReport):
        """Every request counts for `requests`; the rest only from the last document the tab
        committed to: a redirect page (index.html) is judged by the page it leads to, and the
        favicon the browser asks for on the way is not held against it."""
        report.documents = list(self.documents)
        lists = {"console": report.console, "uncaught": report.console, "log": report.log_errors,
                 "failed": report.failed}
        for kind, doc, line in self.events:
            if kind == "request":
                report.requests.append(line)
            elif doc == len(self.documents):
                lists[kind].append(line)


def _error_text(error) -> str:
    """An uncaught exception's first line, and where it was thrown (its stack's first frame)."""
    text = (f"{error.name}: {error.message}" if error.name else error.message) or "exception"
    where = re.search(r"^\s+at (?:.*? \()?(\S+?):(\d+):\d+\)?$", error.stack or "", re.M)
    return text.splitlines()[0] + (f" ({where[1]}:{where[2]})" if where else "")


class Chromium:
    """Headless Chromium through Playwright; a fresh browser context (cache, storage) and tab per visit."""

    def __init__(self, executable: str | None = None, timeout: float = 60):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found: apt-get install chromium, or set CHROMIUM=/path/to/chrome")
        if sync_playwright is None:
            raise BrowserError("Playwright is not installed: pip install playwright (make venv does)")
        self.timeout = timeout

    def __enter__(self):
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._launch()
        except Exception:
            self._playwright.stop()
            raise
        self.version = "Chrome/" + self._browser.version
        return self

    def __exit__(self, *exc):
        try:
            with contextlib.suppress(PlaywrightError):
                self._browser.close()
        finally:
            self._playwright.stop()

    def _launch(self):
        def launch(features):
            try:
                return self._playwright.chromium.launch(
                    executable_path=self.executable, headless=True, timeout=self.timeout * 1000,
                    args=[*CHROMIUM_FLAGS, "--disable-features=" + ",".join(features)])
            except PlaywrightError as e:
                raise BrowserError(f"{self.executable} did not start: {e}") from e

        if not _features_off:    # once per process: read Playwright's --disable-features, then launch with both
            browser = launch(DISABLED_FEATURES)
            try:
                page = browser.new_page()
                page.goto("chrome://version")
                words = page.inner_text("#command_line").split()
            finally:
                browser.close()
            theirs = [f for w in words if w.startswith("--disable-features=") for f in w.split("=", 1)[1].split(",")]
            _features_off[:] = dict.fromkeys(f for f in [*theirs, *DISABLED_FEATURES] if f)
        return launch(_features_off)

    # -- a page --
    def visit(self, url: str, page: str | None = None, screenshot: Path | None = None) -> PageReport:
        """Open URL in a new tab, wait for load, MathJax, images and the network to settle;
        return what happened, and save a full-page PNG to SCREENSHOT if given."""
        start = time.monotonic()
        report = PageReport(page=page or url, url=url)
        context = self._browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=1)
        context.set_default_timeout(self.timeout * 1000)
        tab = context.new_page()
        record = _Recorder(context, tab)
        try:
            try:
                tab.goto(url, wait_until="commit")
            except PlaywrightError as e:
                if "interrupted by another navigation" not in str(e):
                    report.failed.append(f"{url}: navigation failed: {_first_line(e)}")
            if not self._settle(tab, record):
                report.failed.append(f"{url}: did not finish loading within {self.timeout:.0f} s")
            for attempt in range(3):
                try:
                    report.facts = tab.evaluate(INSPECT_JS) or {}
                    break
                except PlaywrightError as e:    # a redirect replaced the document under the script
                    if attempt == 2 or not re.search("navigat|destroyed", str(e)):
                        report.console.append("inspecting the page failed: " + _first_line(e))
                        break
                    self._settle(tab, record)
            self._quiet(tab, record)
            if screenshot is not None:
                report.screenshot = self._screenshot(tab, screenshot)
        except PlaywrightError as e:   # reported with the page; the next page gets a fresh context
            report.failed.append(f"{url}: the browser failed: {_first_line(e)}")
        finally:
            with contextlib.suppress(PlaywrightError):
                context.close()
        record.fill(report)
        report.seconds = time.monotonic() - start
        return report

    def _settle(self, tab, record: _Recorder) -> bool:
        """Until the tab's last main-frame navigation (a redirect included) has fired its load event,
        and its network has been quiet for a moment (or busy for 10 s)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._quiet(tab, record, timeout=min(10, deadline - time.monotonic()))
            if record.loaded():
                return True
        return False

    @staticmethod
    def _quiet(tab, record: _Recorder, quiet: float = 0.3, timeout: float = 10):
        """Until the tab has loaded, every request of its current document has finished or failed
        (one of a document that a redirect replaced may never end) and nothing new happened for
        QUIET seconds."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            tab.wait_for_timeout(50)    # Playwright delivers its events while it waits
            if len(record.events) != seen or record.busy() or not record.loaded():
                seen, since = len(record.events), time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def _screenshot(self, tab, path: Path) -> Path:
        # Grow the window to the page's height rather than capture beyond the viewport, which
        # lays the theme's sticky sidebars out wrongly; then put the window back.
        height = min(16000, tab.evaluate("document.documentElement.scrollHeight"))
        tab.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, height)})
        tab.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        path.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=path)
        tab.set_viewport_size({"width": WIDTH, "height": HEIGHT})
        return path


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ---- checks: each returns readable problem lines, empty when the page is fine ----------------

def is_local(url: str) -> bool:
    """Whether a request stays on this machine: data:/blob:/about: URLs, or http(s)/ws(s) to loopback."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and (parts.hostname or "") in LOCAL_HOSTS


def outside_requests(report: PageReport) -> list[str]:
    return [f"{report.page}: requested {url}" for url in dict.fromkeys(report.requests) if not is_local(url)]


def console_problems(report: PageReport) -> list[str]:
    """Console errors, uncaught exceptions, browser log errors and failed loads (404s and the like).
    The browser logs each failed load too ("Failed to load resource"); the failure's own line,
    with its URL first, stands for both."""
    failed = [line.split(": ")[0] for line in report.failed]
    logged = [line for line in report.log_errors if not (line.startswith("log: Failed to load resource")
                                                         and any(line.endswith(f"({url})") for url in failed))]
    return [f"{report.page}: {line}" for line in report.console + logged + report.failed]


def figure_problems(report: PageReport, expected: int) -> list[str]:
    """EXPECTED notebook-output images are on the page, each decoded, non-zero in size and not blank."""
    images = report.facts.get("images")
    if images is None:
        return [f"{report.page}: the page could not be inspected"]
    outputs = [i for i in images if i["output"]]
    problems = []
    if len(outputs) != expected:
        problems.append(f"{report.page}: {len(outputs)} figure(s) from notebook outputs, "
                        f"the executed notebook has {expected}")
    for img in images:
        if not (img["width"] > 0 and img["height"] > 0):
            problems.append(f"{report.page}: image {img['src']} did not load ({img['width']}x{img['height']})")
        elif img["output"] and img["blank"]:
            problems.append(f"{report.page}: figure {img['src']} is a single colour ({img['width']}x{img['height']})")
    return problems


def math_problems(report: PageReport) -> list[str]:
    """Every math element typeset by MathJax without errors, and no raw TeX left in the text."""
    f = report.facts
    if not f:
        return [f"{report.page}: the page could not be inspected"]
    problems = []
    if f.get("math") and f.get("mathjax") != "typeset":
        problems.append(f"{report.page}: {f['math']} math element(s) but MathJax {f.get('mathjax') or 'is not loaded'}")
    untypeset = f.get("math_untypeset", [])
    if untypeset:
        shown = "; ".join(" ".join(t.split())[:60] for t in untypeset[:3])
        problems.append(f"{report.page}: {len(untypeset)} of {f['math']} math element(s) not typeset, "
                        f"e.g. {shown}")
    problems += [f'{report.page}: MathJax error: "{t}"' for t in f.get("math_errors", [])]
    problems += [f'{report.page}: raw TeX in the text: "{t}"' for t in f.get("raw_tex", [])]
    return problems


def png_outputs(notebook: Path) -> int:
    """How many image/png outputs of an executed notebook the book shows: outputs of cells not
    tagged to hide them, where no richer type (HTML, SVG) takes precedence in myst-nb's HTML."""
    hidden = {"remove-cell", "remove_cell", "remove-output", "remove_output"}
    richer = {"text/html", "image/svg+xml", "application/javascript",
              "application/vnd.jupyter.widget-view+json"}
    n = 0
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code" or hidden & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            n += "image/png" in data and not richer & set(data)
    return n


def wide_block_problems(report: PageReport) -> list[str]:
    """Code blocks, and boxes that scroll (a data frame, display math), wider than their room at the
    WIDTH px window: a reader would scroll them sideways."""
    if "wide_blocks" not in report.facts:
        return [f"{report.page}: the page could not be inspected"]
    problems = []
    for b in report.facts["wide_blocks"]:
        cell = f"the code cell{' tagged ' + ', '.join(b['tags']) if b['tags'] else ''} starting {b['head']!r}"
        what = {"input": f"the code of {cell} (its longest line has {b['longest']} characters)",
                "output": f"an output ({b['tag']}) of {cell}"}.get(b["cell"], f"a {b['tag']} starting {b['head']!r}")
        problems.append(f"{report.page}: {what} is {b['over']} px wider than its {b['room']} px box")
    return problems


def fold_problems(report: PageReport) -> list[str]:
    """A chapter page reads as text and results: the parameters cell shows its code; a cell tagged
    hide-input shows its outputs with its code folded behind a toggle; any other code cell but the
    set-up cell (the first after the parameters cell) shows no code."""
    cells = report.facts.get("cells")
    if cells is None:
        return [f"{report.page}: the page could not be inspected"]
    if not cells:
        return [f"{report.page}: no code cells found: is the check blind?"]
    params = [i for i, c in enumerate(cells) if "parameters" in c["tags"]]
    problems = [] if len(params) == 1 else [f"{report.page}: {len(params)} cells tagged parameters, expected one"]
    setup = next((i for i in range(params[0] + 1, len(cells)) if "injected-parameters" not in cells[i]["tags"]),
                 None) if params else None
    for i, c in enumerate(cells):
        name = f"{report.page}: code cell {i + 1} ({', '.join(c['tags']) or 'no tag'}) starting {c['head']!r}"
        if "parameters" in c["tags"]:
            if c["input"] != "shown":
                problems.append(f"{name}: the parameters cell's code is {c['input']}, not shown")
        elif "hide-input" in c["tags"]:
            if c["input"] != "folded" or not c["toggle"]:
                problems.append(f"{name}: its code is {c['input']}" + ("" if c["toggle"] else ", with no toggle shown")
                                + ", not folded behind a toggle")
            problems += [f"{name}: an output is {o}, not shown" for o in c["outputs"] if o != "shown"]
        elif i != setup and c["input"] == "shown":
            problems.append(f"{name}: shows its code; tag it hide-input")
    return problems


def injected_problems(report: PageReport) -> list[str]:
    """papermill's injected-parameters cell is not shown."""
    if "injected_shown" not in report.facts:
        return [f"{report.page}: the page could not be inspected"]
    return [f"{report.page}: papermill's injected parameters are shown: {head!r}"
            for head in dict.fromkeys(report.facts["injected_shown"])]


def figure_width_problems(report: PageReport, least: float = 0.9, enlarged: float = 1.25) -> list[str]:
    """Every figure from a notebook output that shows is at least LEAST of the text column wide, and
    enlarged at most ENLARGED times its own pixels (more blurs it)."""
    f = report.facts
    if "column" not in f or "images" not in f:
        return [f"{report.page}: the page could not be inspected"]
    problems = []
    for img in f["images"]:
        if not (img["output"] and img["shown"]):
            continue
        if img["shown"] < least * f["column"]:
            problems.append(f"{report.page}: figure {img['src']} is {img['shown']} px wide, under {least:.0%} "
                            f"of the {f['column']} px text column")
        if img["width"] and img["shown"] > enlarged * img["width"] + 1:
            problems.append(f"{report.page}: figure {img['src']} is enlarged from {img['width']} to {img['shown']} "
                            f"px, more than {enlarged}x its pixels: draw it wider")
    return problems


def overflow_problems(report: PageReport) -> list[str]:
    """The page, or a table on it, wider than the window (WIDTH px): a reader would have to scroll sideways."""
    f, problems = report.facts, []
    if f.get("page_overflow"):
        problems.append(f"{report.page}: the page is {f['page_overflow']} px wider than the {WIDTH} px window")
    for t in f.get("wide_tables", []):
        problems.append(f"{report.page}: a table (starting {t['head']!r}) is {t['over']} px wider than its column")
    return problems
