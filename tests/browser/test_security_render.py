"""Hostile model answers in a real JupyterLab: nothing loads, nothing from model HTML exists.

A loopback HTTP server counts every request it gets. The simulator answers with Markdown
images, raw tags (``<img>``, ``<iframe>``, ``<svg onload>``, CSS ``url()``), the regex
sanitiser's old escapes and script links, all pointing at that server. The answer is
checked in a ``%%kimi`` cell while the live view streams, in the final view, after the
notebook is reopened (the saved output) and in the chat sidebar: the server must see zero
requests, no element or event-handler attribute from model HTML may exist and no link may
carry a ``javascript:``/``data:``/``vbscript:`` URL. The images are still reachable, as
plain links with their URL visible.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lab_ui import open_notebook, output_area, run_cell, start_cell
from playwright.sync_api import expect
from test_sidebar import open_sidebar, send

from kimi_jupyter.testing import Reply

PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


class Counter:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def _count(self) -> None:
                with counter.lock:
                    counter.paths.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PIXEL)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(PIXEL)

            do_GET = do_HEAD = do_POST = _count

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 1
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)


@pytest.fixture(scope="module")
def counter() -> Iterator[Counter]:
    c = Counter()
    c.thread.start()
    try:
        yield c
    finally:
        c.server.shutdown()
        c.server.server_close()
        c.thread.join(timeout=5)


def hostile(base: str) -> str:
    return "\n\n".join(
        [
            f"Here is the chart: ![chart]({base}/md-image.png?d=SECRET)",
            f'<img src="{base}/raw-img.png?d=SECRET" onerror="window.__pwned = 1">',
            f'\\`<img src="{base}/escaped-backtick.png" onerror="window.__pwned = 2">` and more',
            f'`` <img src="{base}/unequal-ticks.png" onerror="window.__pwned = 3"> ` then text',
            # Not a fence (a backtick in the info string): a paragraph, then an empty fence.
            f'```py`x\n<img src="{base}/fence-info.png" onerror="window.__pwned = 4">\n```\n```',
            f'<iframe src="{base}/iframe"></iframe> <svg onload="window.__pwned = 5"></svg>',
            f'<div style="background:url({base}/css-url.png)">styled</div> <video poster="{base}/poster.png"></video>',
            f'<link rel="stylesheet" href="{base}/style.css"> <object data="{base}/object"></object>',
            "[next line](\njavascript:window.__pwned=6) [by reference][r] [entity](&#106;avascript:window.__pwned=7)",
            "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [mixed](JaVaScRiPt:window.__pwned=8)",
            "<javascript:window.__pwned=9> ![inline data](data:image/png;base64,iVBORw0KGgo=)",
            f"![by reference][img] [a fine link](https://example.org/docs)\n\n[img]: {base}/ref-image.png\n[r]: javascript:window.__pwned=10",
        ]
    )


CHECK = """([root, base]) => {
  const scope = document.querySelector(root);
  if (!scope) return {missing: root};
  const all = Array.from(scope.querySelectorAll('*'));
  // Our own Copy buttons of the live view carry a fixed onclick; nothing else may have a handler.
  const handlers = all.filter(el => !el.matches('button.kimi-copy')
      && Array.from(el.attributes).some(a => a.name.toLowerCase().startsWith('on')));
  const fromBase = all.filter(el => ['src', 'poster', 'data', 'srcset', 'style'].some(
      name => (el.getAttribute(name) || '').includes(base)));
  const links = Array.from(scope.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
  return {
    handlers: handlers.map(el => el.outerHTML.slice(0, 120)),
    loaders: fromBase.map(el => el.outerHTML.slice(0, 120)),
    tags: all.filter(el => ['IMG', 'IFRAME', 'SVG', 'VIDEO', 'OBJECT', 'LINK', 'SCRIPT', 'EMBED']
                        .includes(el.tagName.toUpperCase()) && !el.closest('mjx-container')
                        && (el.closest('.jp-kimi-answer, .jp-RenderedMarkdown, .kimi-answer')))
             .map(el => el.outerHTML.slice(0, 120)),
    badLinks: links.filter(h => /^\\s*(javascript|data|vbscript):/i.test(h)),
    imageLinks: links.filter(h => h.startsWith(base + '/md-image.png')),
    pwned: window.__pwned === undefined ? null : window.__pwned,
  };
}"""


def assert_policy(page: Any, root: str, counter: Counter, where: str) -> None:
    page.wait_for_timeout(1500)  # time for any load the DOM might have started
    found = page.evaluate(CHECK, [root, counter.base])
    assert "missing" not in found, f"{where}: {found}"
    assert found["handlers"] == [], f"{where}: {found['handlers']}"
    assert found["loaders"] == [], f"{where}: {found['loaders']}"
    assert found["tags"] == [], f"{where}: {found['tags']}"
    assert found["badLinks"] == [], f"{where}: {found['badLinks']}"
    assert found["pwned"] is None, f"{where}: {found['pwned']}"
    assert found["imageLinks"], f"{where}: the image should be a plain link"
    assert counter.paths == [], f"{where}: the page fetched {counter.paths}"


def test_hostile_answer_loads_nothing_live_saved_and_in_the_sidebar(page, lab, sim, shot, counter):
    answer = hostile(counter.base)
    lab.write_notebook("hostile.ipynb", [
        {"cell_type": "code", "source": "%load_ext kimi_jupyter"},
        {"cell_type": "code", "source": "%%kimi\nSummarise the chart"},
    ])
    open_notebook(page, lab.notebook_url("hostile.ipynb"))
    run_cell(page, 0)

    # Live: the widget view streams the hostile part first, then a slow tail.
    tail = " and the trend continues" * 60
    sim.queue(Reply(text=answer + "\n\n" + tail, chunk_chars=12, chunk_delay=0.03))
    start_cell(page, 1)
    out = output_area(page, 1)
    expect(out).to_contain_text("image: chart", timeout=30_000)
    assert out.locator(".jp-kimi-rendered").count() == 0  # still the live widget view
    assert_policy(page, ".jp-NotebookPanel .jp-Notebook", counter, "live view")
    shot(page, "s1-hostile-answer-live")

    # Final: the view is replaced by the saved bundle (our MIME renderer in JupyterLab).
    final = out.locator(".jp-kimi-rendered .jp-kimi-answer")
    expect(final).to_contain_text("the trend continues", timeout=60_000)
    expect(final).to_contain_text("image: chart")
    expect(final).to_contain_text('<img src="')  # raw HTML is shown as text
    assert_policy(page, ".jp-NotebookPanel .jp-Notebook", counter, "final view")
    final.scroll_into_view_if_needed()
    shot(page, "s2-hostile-answer-final")
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=15_000)

    # Reopened: the saved output renders under the same policy.
    open_notebook(page, lab.notebook_url("hostile.ipynb"))
    saved = output_area(page, 1).locator(".jp-kimi-rendered .jp-kimi-answer")
    expect(saved).to_contain_text("image: chart", timeout=30_000)
    assert_policy(page, ".jp-NotebookPanel .jp-Notebook", counter, "saved output after reload")
    shot(page, "s3-hostile-answer-reopened")

    # The sidebar renders the raw model text it gets from the kernel under the same policy.
    sidebar = open_sidebar(page)
    expect(sidebar.locator(".jp-kimi-banner")).to_have_attribute("data-status", "ready", timeout=30_000)
    sim.queue(Reply(text=answer, chunk_chars=40, chunk_delay=0.01))
    turn = send(sidebar, "Summarise the chart")
    expect(turn).to_have_attribute("data-phase", "done", timeout=30_000)
    expect(turn.locator(".jp-kimi-answer")).to_contain_text("image: chart")
    assert_policy(page, "#kimi-jupyter-sidebar", counter, "sidebar")
    shot(page, "s4-hostile-answer-sidebar")
    assert counter.paths == []
