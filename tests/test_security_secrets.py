"""Issue 9: the API key appears nowhere.

With a recognisable fake key, run the example notebooks and a representative session
(magics, ``%config Kimi``, ``%kimi config``, errors including a 401 whose body echoes the
key, agent mode, the response cache, the sidebar's comm messages, debug logging of httpx
and httpcore) and search everything a user could see or save: notebook files, outputs,
exception messages, reprs, log records, cache files, comm payloads. Neither the key nor a
long prefix or suffix of it may appear; the masked form ``sk-…cdef`` is the only trace.
The checks prove the key really was used (the simulator saw it in the Authorization header).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from kimi_jupyter.testing import Fault, KimiSimulator, Reply, ToolCall

pytestmark = pytest.mark.timeout(120)

KEY = "sk-kimi-LEAKCHECK-0123456789abcdef"
#: Pieces that must never be seen: the key, a long prefix, a long suffix, its unique middle.
FORBIDDEN = (KEY, KEY[:8], KEY[-8:], "LEAKCHECK")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def assert_clean(text: str, where: str) -> None:
    for piece in FORBIDDEN:
        assert piece not in text, f"{piece!r} found in {where}: ...{_around(text, piece)}..."


def _around(text: str, piece: str) -> str:
    at = text.find(piece)
    return text[max(0, at - 80) : at + len(piece) + 40]


def files_text(root: Path) -> str:
    return "\n".join(p.read_text("utf-8", errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


def script(sim: KimiSimulator) -> None:
    """The replies and faults the representative session runs into (matched by prompt)."""
    sim.on(r"fail auth", Fault.status(401, "invalid_authentication_error",
                                      f"Invalid Authentication: the key {KEY} is not valid (Bearer {KEY})"))
    sim.on(r"fail server", Fault.status(500, "server_error", f"upstream said: Authorization: Bearer {KEY}"))
    sim.on(r"use tools", Reply(reasoning="Run it.", text="Let me run it.", tool_calls=[ToolCall("run_python", {"code": "x = 21 * 2\nprint(x)"})]))
    sim.on(r"use tools", Reply(text="Done."), after_tool="run_python")


# -- in process: outputs, logs, reprs, exceptions, cache, comm ------------------------------


@pytest.fixture
def leak_sim(monkeypatch):
    with KimiSimulator(api_key=KEY) as sim:
        monkeypatch.setenv("KIMI_BASE_URL", sim.base_url)
        monkeypatch.setenv("MOONSHOT_API_KEY", KEY)
        monkeypatch.setenv("KIMI_PROVIDER", "moonshot")
        script(sim)
        yield sim


@pytest.fixture
def ip(leak_sim):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell
    for reset in ("api_key = None", "cache = False", "auto_approve = False", "retry_backoff = 1.0"):
        shell.run_line_magic("config", f"Kimi.{reset}")
    shell.config.pop("Kimi", None)


def test_in_process_session_never_shows_the_key(ip, leak_sim, capsys, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "kimi_jupyter", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[str] = []

    def cell(code: str) -> None:
        result = ip.run_cell(code)
        if result.error_in_exec is not None:
            seen.append(repr(result.error_in_exec) + str(result.error_in_exec))
        if result.result is not None:
            seen.append(repr(result.result))

    # The key set through %config, as a user might: %config Kimi must not echo it back.
    ip.run_line_magic("config", f"Kimi.api_key = {KEY!r}")
    ip.run_line_magic("kimi", "trust-endpoint")  # the key (%config) and the URL (environment) differ
    for code in ("%config Kimi", "%kimi config", "%kimi models", "%config Kimi.cache = True",
                 "%config Kimi.retry_backoff = 0.01",
                 "%%kimi --display text --new\nHello there", "%%kimi --display text --new\nHello there",
                 "%kimi cache info", "%%kimi --display text --new\nplease fail auth",
                 "%%kimi --display markdown\nplease fail server", "%%kimi --agent --display text\nplease use tools",
                 "%config Kimi.auto_approve = True", "%%kimi --agent --display text\nplease use tools again",
                 "%kimi usage", "%kimi history", "_kimi", "print(repr(_kimi), _kimi.summary())"):
        cell(code)

    from kimi_jupyter import aask, ask
    from kimi_jupyter.client import AsyncKimiClient, KimiClient
    from kimi_jupyter.events import event_to_json
    from kimi_jupyter.session import get_session
    from kimi_jupyter.sidebar.chat import SidebarChat, handle_message

    session = get_session()
    settings = session.settings()
    failed = ask("please fail auth", display="text")
    failed_async = asyncio.run(aask("please fail server", display="text", retry_backoff=0.01, max_retries=1))
    for response in (failed, failed_async, session.last):
        seen += [repr(response), str(response), response._repr_markdown_(), json.dumps(response.summary())]
        seen += [json.dumps(event_to_json(e)) for e in response.events]
        with pytest.raises(Exception) as raised:
            response.raise_for_error()
        seen += [str(raised.value), repr(raised.value)]
    seen += [repr(settings), str(settings), repr(settings.api_key), str(settings.api_key), repr(settings.describe()),
             repr(session.settings(api_key=KEY)), repr(KimiClient(settings)), repr(AsyncKimiClient(settings)),
             repr(session.client(settings)), repr(session._clients), repr(vars(session)), repr(session.ledger)]
    with pytest.raises(TypeError):
        pickle.dumps(settings)

    # The sidebar's comm payloads.
    sent: list[dict[str, Any]] = []
    sidebar = SidebarChat(session, namespace=ip.user_ns)
    for message in ({"action": "hello"}, {"action": "ask", "request_id": "a", "prompt": "Hello sidebar"},
                    {"action": "ask", "request_id": "b", "prompt": "please fail auth"}, {"action": "nonsense"}):
        handle_message(message, sent.append, sidebar=sidebar)
    assert sent[0]["has_key"] is True and any(m.get("type") == "done" for m in sent)
    seen.append(json.dumps(sent))

    captured = capsys.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    seen += [repr(r.args) + r.getMessage() for r in caplog.records]
    cache_dir = tmp_path / ".kimi-cache"
    assert any(cache_dir.rglob("*.json")), "the cache was on: some entry should exist"
    seen.append(files_text(cache_dir))
    # Request bodies carry no key either (only the Authorization header does).
    seen += [json.dumps(r.json) for r in leak_sim.requests if r.json is not None]

    everything = "\n".join(seen)
    assert "Replayed from the response cache" in everything
    assert "Current: 'sk-…cdef'" in everything  # %config Kimi shows the masked key, as %kimi config does
    assert "API key was rejected (401)" in everything and "***" in everything  # the echoed key was redacted
    assert "httpcore" in everything  # debug logging was really on
    assert_clean(everything, "the in-process session")
    assert leak_sim.chat_requests[0].headers["Authorization"] == f"Bearer {KEY}"


# -- real kernels: the example notebooks and a representative session, saved to disk -------

LOGGING_CELL = """\
import logging, sys
_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(logging.Formatter("LOG %(name)s %(levelname)s %(message)s %(args)r"))
logging.getLogger().addHandler(_handler)
logging.getLogger().setLevel(logging.DEBUG)
for _name in ("matplotlib", "PIL", "asyncio", "traitlets", "parso", "comm", "ipykernel", "Comm"):
    logging.getLogger(_name).setLevel(logging.WARNING)
"""

SESSION_CELLS = [
    LOGGING_CELL,
    "%load_ext kimi_jupyter",
    # The key through %config without writing it into the notebook's source.
    "import os\nget_ipython().run_line_magic('config', 'Kimi.api_key = ' + repr(os.environ['MOONSHOT_API_KEY']))",
    "%kimi trust-endpoint",
    "%config Kimi",
    "%kimi config",
    # Failing turns fail their cells; this session shows them all, so it keeps going.
    "%config Kimi.cache = True\n%config Kimi.retry_backoff = 0.01\n%config Kimi.keep_going = True",
    "%%kimi --new\nHello there",
    "%%kimi --new\nHello there",
    "%kimi cache info",
    "%%kimi --display text\nplease fail auth",
    "%%kimi\nplease fail server",
    "%%kimi --agent\nplease use tools",  # nbclient sends allow_stdin=False: the approver denies
    "%%kimi --agent --yes --display text\nplease use tools now",
    "%kimi models",
    "%kimi usage",
    "%kimi history",
    "_kimi",
    "from kimi_jupyter import ask\nr = ask('please fail auth')\ntry:\n    r.raise_for_error()\n"
    "except Exception as e:\n    print(repr(e))\nr",
    "from kimi_jupyter.session import get_session\ns = get_session()\n"
    "print(repr(s.settings()), s.settings().api_key, s._clients, vars(s))",
    "import json\nfrom kimi_jupyter.sidebar.chat import handle_message\n_sent = []\n"
    "for _m in ({'action': 'hello'}, {'action': 'ask', 'request_id': 'a', 'prompt': 'Hello sidebar'},\n"
    "           {'action': 'ask', 'request_id': 'b', 'prompt': 'please fail auth'}):\n"
    "    handle_message(_m, _sent.append)\nprint('COMM', json.dumps(_sent))",
]


def _load_harness() -> Any | None:
    """The notebooks' simulator harness (scripted replies, provider env), wherever it lives now."""
    candidates = [NOTEBOOKS / "harness" / "nbharness.py", NOTEBOOKS / "harness.py", *sorted(NOTEBOOKS.rglob("*harness*.py"))]
    for path in candidates:
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(f"kimi_notebook_harness_{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "start_simulator") and hasattr(module, "test_env"):
            return module
    return None


def _kernel_env(base_url: str, harness: Any | None) -> dict[str, str]:
    cleared = ("KIMI_API_KEY", "KIMI_MODEL", "KIMI_ENDPOINT", "LOCAL_KIMI_URL")
    env = {k: v for k, v in os.environ.items() if k not in cleared}
    extra = harness.test_env(base_url, KEY) if harness is not None else {
        "KIMI_BASE_URL": base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot"}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(REPO), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]))
    return env


async def _execute(path: Path, sim: KimiSimulator, harness: Any | None) -> Any:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if not any(LOGGING_CELL in "".join(cell.source) for cell in nb.cells):
        nb.cells.insert(0, nbformat.v4.new_code_cell(LOGGING_CELL))
    client = NotebookClient(nb, timeout=90, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        await client.async_execute(env=_kernel_env(sim.base_url, harness))
    finally:
        sim.stop()
    nbformat.write(nb, path)
    return nb


def test_notebooks_and_a_session_in_real_kernels_never_save_the_key(tmp_path):
    import nbformat

    work = tmp_path / "notebooks"
    harness = _load_harness()
    jobs: list[tuple[Path, KimiSimulator]] = []
    if NOTEBOOKS.is_dir():
        shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns("*.py", "*.cfg", ".ipynb_checkpoints"))
        for path in sorted(work.glob("*.ipynb")):
            # Without the harness's scripted replies the notebooks still run (demo replies),
            # though some cells may then fail: the key check is what matters here.
            jobs.append((path, harness.start_simulator(KEY) if harness else KimiSimulator(api_key=KEY).start()))
    examples = len(jobs)
    session_dir = tmp_path / "session"
    session_dir.mkdir()
    session_path = session_dir / "session.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in SESSION_CELLS]), session_path)
    session_sim = KimiSimulator(api_key=KEY).start()
    script(session_sim)
    jobs.append((session_path, session_sim))
    sims = [sim for _, sim in jobs]

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(_execute(path, sim, harness if path != session_path else None)
                                      for path, sim in jobs))

    notebooks = asyncio.run(run_all())

    assert examples == len(list(NOTEBOOKS.glob("*.ipynb"))) if NOTEBOOKS.is_dir() else examples == 0
    for (path, _), nb in zip(jobs, notebooks, strict=True):
        # A cell tagged raises-exception fails on purpose (09-fix-and-edit's %kimi fix example).
        errors = [(o.ename, o.evalue) for cell in nb.cells for o in cell.get("outputs", [])
                  if o.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])]
        if harness is not None or path == session_path:
            assert errors == [], f"{path.name}: {errors}"
        assert_clean(path.read_text("utf-8"), path.name)
    for sim in sims:  # every kernel really used the key
        assert sim.chat_requests and all(r.headers["Authorization"] == f"Bearer {KEY}" for r in sim.chat_requests)
    saved = session_path.read_text("utf-8")
    assert "sk-…cdef" in saved and "API key was rejected (401)" in saved and "LOG httpcore" in saved
    assert "COMM" in saved and "run_python · denied" in saved
    assert "Replayed from the response cache" in saved
    cache_files = list((session_dir / ".kimi-cache").rglob("*.json"))
    assert cache_files
    assert_clean(files_text(session_dir / ".kimi-cache"), "the session's cache files")
    if work.exists():
        assert_clean(files_text(work), "the example notebooks' folder")
