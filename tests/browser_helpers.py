"""Open a static site in headless Chromium, as a reader would, and record what each page does.

Used by test_browser.py. Chromium is driven through the DevTools protocol over a pipe
(`--remote-debugging-pipe`: JSON messages separated by NUL bytes on file descriptors 3 and 4),
so this needs no Python package beyond the standard library and no debugging port.

    with Chromium() as browser, serve(site) as base:
        report = browser.visit(base + "index.html")
        console_problems(report), outside_requests(report), figure_problems(report, 3), math_problems(report)

The check functions return readable lines (page, message, URL), empty when all is well.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
WIDTH, HEIGHT = 1280, 900      # CSS pixels of the window; screenshots cover the whole page height

# Flags that keep Chromium off the network: no background services, no component or safe-browsing
# updates, no sync, no default apps; every host name resolves to nothing except the loopback
# address, and any request that still escapes goes to a proxy on a closed local port.
# Loopback addresses bypass a fixed proxy by default, so the local server is reached directly.
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--disable-breakpad",
    "--no-pings", "--metrics-recording-only", "--safebrowsing-disable-auto-update",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--hide-scrollbars", "--mute-audio", "--force-color-profile=srgb",
    f"--window-size={WIDTH},{HEIGHT}",
]

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
  facts.images = [...document.images].map(img => ({
    src: img.getAttribute('src'), url: img.currentSrc || img.src,
    output: !!img.closest('.cell_output'),
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


# ---- Chromium over the DevTools protocol -----------------------------------------------------

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


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe; one fresh tab per visit."""

    def __init__(self, executable: str | None = None, timeout: float = 60):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("no Chromium found: apt-get install chromium, or set CHROMIUM=/path/to/chrome")
        self.timeout = timeout
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._responses: dict[int, dict] = {}
        self._events: dict[str | None, list[tuple[str, dict]]] = {}
        self._children: dict[str, str] = {}    # child session (frame, worker) -> its page's session
        self._closed = False

    # -- process --
    def __enter__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="book-chromium-", ignore_cleanup_errors=True)
        profile = Path(self._tmp.name) / "profile"
        self._stderr = open(Path(self._tmp.name) / "stderr.txt", "w+b")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # The pipe's ends go on the fds Chromium reads (3) and writes (4); dup2 leaves them inheritable.
        # preexec_fn runs only os.dup2, and callers start Chromium before the server thread.
        def fds():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        cmd = [self.executable, *CHROMIUM_FLAGS, "--remote-debugging-pipe",
               f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                                     close_fds=False, preexec_fn=fds, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._reader = threading.Thread(target=self._read, name="chromium-reader", daemon=True)
        self._reader.start()
        try:
            self.version = self.send("Browser.getVersion", timeout=30)["product"]
        except BrowserError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        with contextlib.suppress(BrowserError, OSError):
            if self.proc.poll() is None:
                self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:   # its renderers share its process group (start_new_session)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._closed = True
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stderr.close()
        self._tmp.cleanup()

    def stderr_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.flush()
            self._stderr.seek(0)
            return "\n".join(self._stderr.read().decode(errors="replace").splitlines()[-lines:])
        return ""

    # -- protocol --
    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            if b"\0" in chunk:     # a screenshot arrives in many chunks: split only at a message's end
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    self._dispatch(json.loads(raw))

    def _dispatch(self, msg: dict):
        if "id" in msg:
            with self._cond:
                self._responses[msg["id"]] = msg
                self._cond.notify_all()
            return
        session, method, params = msg.get("sessionId"), msg.get("method"), msg.get("params", {})
        if method == "Target.attachedToTarget" and session:
            # A frame or worker of a page (our own attaches come on the browser's session, None):
            # record its traffic too, then let it run.
            child = params["sessionId"]
            with self._cond:
                self._children[child] = self._children.get(session, session)
            for m in ("Runtime.enable", "Log.enable", "Network.enable"):
                self._post(m, {}, child)
            self._post("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True,
                                                "flatten": True}, child)
            self._post("Runtime.runIfWaitingForDebugger", {}, child)
        with self._cond:
            owner = self._children.get(session, session)
            self._events.setdefault(owner, []).append((method, params))
            self._cond.notify_all()

    def _post(self, method: str, params: dict, session: str | None = None) -> int:
        with self._lock:
            self._next_id += 1
            msg = {"id": self._next_id, "method": method, "params": params}
            if session:
                msg["sessionId"] = session
            data = json.dumps(msg).encode() + b"\0"
            view = memoryview(data)
            while view:
                view = view[os.write(self._to_browser, view):]
            return self._next_id

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and wait for its result; a protocol error raises BrowserError."""
        try:
            msg_id = self._post(method, params or {}, session)
        except OSError as e:
            raise BrowserError(f"{method}: Chromium's pipe is closed ({e})\n{self.stderr_tail()}") from e
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while msg_id not in self._responses:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    why = "Chromium exited" if self._closed else f"no answer within {timeout or self.timeout:.0f} s"
                    raise BrowserError(f"{method}: {why}\n{self.stderr_tail()}")
                self._cond.wait(left)
            msg = self._responses.pop(msg_id)
        if "error" in msg:
            raise BrowserError(f"{method}: {msg['error'].get('message')} {msg['error'].get('data', '')}".strip())
        return msg.get("result", {})

    def _wait_loaded(self, session: str, since: int) -> bool:
        """Until the tab's last main-frame navigation (a redirect included) has fired its load event;
        SINCE: how many of the tab's events came before the navigation."""
        deadline = time.monotonic() + self.timeout

        def count(events, method):
            return sum(m == method and not (method == "Page.frameNavigated" and p["frame"].get("parentId"))
                       for m, p in events[since:])

        while time.monotonic() < deadline:
            with self._cond:
                while not count(self._events.get(session, []), "Page.loadEventFired"):
                    left = deadline - time.monotonic()
                    if self._closed or left <= 0:
                        return False
                    self._cond.wait(left)
            self._wait_network_quiet(session, timeout=min(10, deadline - time.monotonic()))
            with self._cond:
                events = self._events.get(session, [])
                navigated, loaded = count(events, "Page.frameNavigated"), count(events, "Page.loadEventFired")
            if loaded >= navigated:
                return True
            with self._cond:   # wait for the next load event
                while count(self._events.get(session, []), "Page.loadEventFired") <= loaded:
                    left = deadline - time.monotonic()
                    if self._closed or left <= 0:
                        return False
                    self._cond.wait(left)
        return False

    def _wait_network_quiet(self, session: str, quiet: float = 0.3, timeout: float = 10):
        """Until every request has finished or failed and nothing new happened for QUIET seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while time.monotonic() < deadline:
                events = self._events.get(session, [])
                # Requests of a document that a redirect replaced may never report an end.
                commits = [i for i, (m, p) in enumerate(events)
                           if m == "Page.frameNavigated" and not p["frame"].get("parentId")]
                current = events[commits[-1]:] if commits else events
                started = {p["requestId"] for m, p in current if m == "Network.requestWillBeSent"}
                ended = {p["requestId"] for m, p in events
                         if m in ("Network.loadingFinished", "Network.loadingFailed")}
                n = len(events)
                if started <= ended:
                    self._cond.wait(quiet)
                    if len(self._events.get(session, [])) == n:
                        return
                else:
                    self._cond.wait(min(quiet, max(0.0, deadline - time.monotonic())))

    # -- a page --
    def visit(self, url: str, page: str | None = None, screenshot: Path | None = None) -> PageReport:
        """Open URL in a new tab, wait for load, MathJax, images and the network to settle;
        return what happened, and save a full-page PNG to SCREENSHOT if given."""
        start = time.monotonic()
        report = PageReport(page=page or url, url=url)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
                self.send(method, session=session)
            self.send("Network.setCacheDisabled", {"cacheDisabled": True}, session)
            self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True,
                                               "flatten": True}, session)
            self.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                             "deviceScaleFactor": 1, "mobile": False}, session)
            with self._cond:
                since = len(self._events.get(session, []))
            nav = self.send("Page.navigate", {"url": url}, session)
            if nav.get("errorText"):
                report.failed.append(f"{url}: navigation failed: {nav['errorText']}")
            if not self._wait_loaded(session, since):
                report.failed.append(f"{url}: did not finish loading within {self.timeout:.0f} s")
            for attempt in range(3):
                try:
                    result = self.send("Runtime.evaluate", {"expression": INSPECT_JS, "awaitPromise": True,
                                                            "returnByValue": True}, session)
                    break
                except BrowserError as e:  # a redirect replaced the document under the script
                    if attempt == 2 or "navigated" not in str(e) and "destroyed" not in str(e):
                        raise
                    self._wait_loaded(session, since)
            if "exceptionDetails" in result:
                report.console.append("inspecting the page failed: " + _exception_text(result["exceptionDetails"]))
            else:
                report.facts = result.get("result", {}).get("value") or {}
            self._wait_network_quiet(session)
            if screenshot is not None:
                report.screenshot = self._screenshot(session, screenshot)
        except BrowserError as e:   # reported with the page; the next page gets a fresh tab
            report.failed.append(f"{url}: the browser failed: {e}")
        finally:
            with contextlib.suppress(BrowserError):
                self.send("Target.closeTarget", {"targetId": target}, timeout=10)
            with self._cond:
                events = self._events.pop(session, [])
                for child in [c for c, owner in self._children.items() if owner == session]:
                    del self._children[child]
        _fill(report, events)
        report.seconds = time.monotonic() - start
        return report

    def _screenshot(self, session: str, path: Path) -> Path:
        # Grow the window to the page's height rather than capture beyond the viewport, which
        # lays the theme's sticky sidebars out wrongly; then put the window back.
        height = min(16000, int(self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]))
        self.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": max(HEIGHT, height),
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
        self.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(() => "
                                       "requestAnimationFrame(r)))", "awaitPromise": True}, session)
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT,
                                                         "deviceScaleFactor": 1, "mobile": False}, session)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def _exception_text(details: dict) -> str:
    exc = details.get("exception") or {}
    text = exc.get("description") or details.get("text") or "exception"
    where = details.get("url") or ""
    if where:
        where = f" ({where}:{details.get('lineNumber', 0) + 1})"
    return text.splitlines()[0] + where


def _fill(report: PageReport, events: list[tuple[str, dict]]):
    """Turn the DevTools events of one page (and its frames and workers) into readable lines.

    Every request counts for `requests`; the rest only from the last document the tab committed
    to, as DevTools clears its console on navigation: a redirect page (index.html) is judged by
    the page it leads to, and the favicon the browser asks for on the way is not held against it.
    """
    commits = [i for i, (m, p) in enumerate(events) if m == "Page.frameNavigated" and not p["frame"].get("parentId")]
    report.documents = [events[i][1]["frame"]["url"] for i in commits]
    first = commits[-1] if commits else 0
    urls: dict[str, str] = {}
    previous: set[str] = set()    # requests of an earlier document
    for i, (method, p) in enumerate(events):
        if method == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
            report.requests.append(p["request"]["url"])
            if i < first:
                previous.add(p["requestId"])
            continue
        if i < first or (p.get("requestId") or p.get("entry", {}).get("networkRequestId")) in previous:
            continue
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            frames = (p.get("stackTrace") or {}).get("callFrames") or []
            where = f" ({frames[0]['url']}:{frames[0]['lineNumber'] + 1})" if frames else ""
            report.console.append(f"console.{p['type']}: {args}{where}")
        elif method == "Runtime.exceptionThrown":
            report.console.append("uncaught " + _exception_text(p["exceptionDetails"]))
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            report.log_errors.append(f"{e.get('source', 'log')}: {e.get('text', '')}"
                                     + (f" ({e['url']})" if e.get("url") else ""))
        elif method == "Network.responseReceived" and p["response"].get("status", 0) >= 400:
            r = p["response"]
            report.failed.append(f"{r['url']}: HTTP {r['status']} {r.get('statusText', '')}".rstrip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            why = p.get("blockedReason") or p.get("errorText", "failed")
            report.failed.append(f"{urls.get(p['requestId'], p['requestId'])}: {why}")


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
    logged = [line for line in report.log_errors
              if not (line.startswith("network: ") and any(line.endswith(f"({url})") for url in failed))]
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


def overflow_problems(report: PageReport) -> list[str]:
    """The page, or a table on it, wider than the window (WIDTH px): a reader would have to scroll sideways."""
    f, problems = report.facts, []
    if f.get("page_overflow"):
        problems.append(f"{report.page}: the page is {f['page_overflow']} px wider than the {WIDTH} px window")
    for t in f.get("wide_tables", []):
        problems.append(f"{report.page}: a table (starting {t['head']!r}) is {t['over']} px wider than its column")
    return problems
