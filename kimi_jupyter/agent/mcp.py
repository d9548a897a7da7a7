"""MCP servers as agent tools, on the official ``mcp`` SDK (``pip install kimi-jupyter[mcp]``).

Configuration, in the ``mcpServers`` shape other MCP clients use, from (later wins per
server name): ``~/.kimi/mcp.json``, ``.kimi/mcp.json`` in the notebook's folder (the kernel's
working directory), then ``%config Kimi.mcp_config``::

    {"mcpServers": {
        "time": {"command": "python", "args": ["-m", "mcp_server_time"]},
        "docs": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ..."},
                 "trust": "read-only"}}}

A server has either ``command`` (stdio; ``args``, ``env`` and ``cwd`` optional; it gets the
SDK's small default environment plus ``env``, never the kernel's whole environment, so no
API key leaks into it) or ``url`` (streamable HTTP; ``headers`` optional). ``"disabled":
true`` skips it.

Servers run in one background thread with its own asyncio loop (the kernel's loop is
ipykernel's, and a cell blocks it), started on the first agent turn or ``%kimi mcp``.
Every wait on them is bounded: a call (and its answer) by ``Kimi.mcp_timeout``, a start and
the tool listing by the same or `START_SECONDS`, whichever is longer. A
server that fails to start, crashes, or lets a call time out is marked failed with one line
(the last lines of its stderr for stdio servers) and offers no tools until ``%kimi mcp
restart``. They all stop on ``%unload_ext kimi_jupyter`` and when the kernel exits.

Tools are offered to the agent as ``server__tool`` (names made safe for the API), at most
`MAX_TOOLS` in all; descriptions and schemas are bounded. Every call goes through the
agent's approval gate like ``run_python``; a server with ``"trust": "read-only"`` skips the
question only for tools it annotates ``readOnlyHint``. Results are untrusted input: the API
key is masked, text is cut to the tool result size, images become image parts (downscaled
like any image), other binary content is named, not sent.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import ApprovalRequested, ApprovalResolved, Notice, ToolCallFinished, ToolCallStarted
from .tools import RESULT_CHARS, ToolResult, _clip

__all__ = [
    "MAX_TOOLS", "McpHub", "McpTools", "ServerSpec", "for_turn", "hub", "load_specs", "report", "stop_all",
]

CONFIG_BYTES = 1024 * 1024
START_SECONDS = 30.0  # a server gets at least this long to start (Kimi.mcp_timeout, if longer)
MAX_TOOLS = 100  # tools offered to the model from all servers together
MAX_LISTED = 2000  # tools read from one server at most
DESCRIPTION_CHARS = 1024
SCHEMA_BYTES = 16 * 1024
MAX_IMAGES = 4
STDERR_LINES = 3
SEPARATOR = "__"
INSTALL = "MCP servers need the mcp package: pip install 'kimi-jupyter[mcp]'."
_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ServerSpec:
    """One configured server."""

    name: str
    source: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    trust: str = "ask"

    def where(self) -> str:
        if self.url:
            from ..settings import public_url

            return f"http {public_url(self.url)}"
        return "stdio " + " ".join([self.command or "", *self.args])[:120]


def _spec(name: str, raw: Mapping[str, Any], source: str) -> ServerSpec | str:
    """A ServerSpec, or the one-line reason this entry is unusable."""
    def strings(value: Any, what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{what} must be a list of strings")
        return tuple(value)

    def pairs(value: Any, what: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in value.items()):
            raise ValueError(f"{what} must map names to strings")
        return tuple(sorted(value.items()))

    try:
        trust = raw.get("trust", "ask")
        if trust not in ("ask", "read-only"):
            raise ValueError('trust must be "ask" or "read-only"')
        url, command = raw.get("url"), raw.get("command")
        if url is not None:
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                raise ValueError("url must be an http:// or https:// URL")
            return ServerSpec(name, source, url=url, headers=pairs(raw.get("headers"), "headers"), trust=trust)
        if not isinstance(command, str) or not command.strip():
            raise ValueError('give "command" (a stdio server) or "url" (a streamable HTTP server)')
        cwd = raw.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ValueError("cwd must be a path")
        return ServerSpec(name, source, command=command, args=strings(raw.get("args"), "args"),
                          env=pairs(raw.get("env"), "env"), cwd=cwd, trust=trust)
    except ValueError as error:
        return f"{name} ({source}): {error}."


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    try:
        info = os.stat(path)
    except OSError:
        return None, None  # no such file: nothing configured there
    if not stat.S_ISREG(info.st_mode) or info.st_size > CONFIG_BYTES:
        return None, f"{path}: not read (not a regular file of at most 1 MiB)."
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(CONFIG_BYTES + 1))
    except (OSError, ValueError) as error:
        return None, f"{path}: not valid JSON ({error})."
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return None, f'{path}: no "mcpServers" object.'
    return servers, None


def load_specs(settings: Any, cwd: str | os.PathLike[str] | None = None,
               home: str | os.PathLike[str] | None = None) -> tuple[dict[str, ServerSpec], list[str]]:
    """The configured servers by name, and one line per problem found in the configuration."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    problems: list[str] = []
    home_path = Path(home) if home is not None else Path.home()
    here = Path(cwd or os.getcwd())
    for shown, path in (("~/.kimi/mcp.json", home_path / ".kimi" / "mcp.json"),
                        (".kimi/mcp.json", here / ".kimi" / "mcp.json")):
        servers, problem = _read_json(path)
        if problem:
            problems.append(problem)
        if servers:
            layers.append((shown, servers))
    config = getattr(settings, "mcp_config", None)
    if config is not None:
        layers.append(("Kimi.mcp_config", config.servers))
    specs: dict[str, ServerSpec] = {}
    for source, servers in layers:
        for name, raw in servers.items():
            if not isinstance(name, str) or not name or not isinstance(raw, Mapping):
                problems.append(f"{source}: server {name!r} is not an object.")
                continue
            if raw.get("disabled") is True:
                specs.pop(name, None)
                continue
            made = _spec(name, raw, source)
            if isinstance(made, str):
                problems.append(made)
            else:
                specs[name] = made
    return specs, problems


# -- the running servers ---------------------------------------------------------------------

@dataclass
class Server:
    spec: ServerSpec
    state: str = "starting"  # starting, ready, failed, stopped
    problem: str | None = None
    tools: list[Any] = field(default_factory=list)
    listed: int = 0
    session: Any = None
    stop: Any = None  # asyncio.Event, on the hub's loop
    task: Any = None
    ready: threading.Event = field(default_factory=threading.Event)
    stderr: Any = None

    def stderr_tail(self) -> str:
        handle = self.stderr
        if handle is None:
            return ""
        try:
            handle.flush()
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            text = handle.read()
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-STDERR_LINES:])[:400]

    def fail(self, what: str) -> None:
        tail = self.stderr_tail()
        self.state = "failed"
        self.problem = what + (f"; stderr: {tail}" if tail else "")
        self.session = None
        self.ready.set()


def _why(error: BaseException) -> str:
    """One line for an exception from a transport (anyio wraps them in groups)."""
    while getattr(error, "exceptions", None):  # an (anyio) exception group: its first cause
        error = error.exceptions[0]  # type: ignore[attr-defined]
    text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class McpHub:
    """The kernel's MCP servers, run on one background thread with its own event loop."""

    def __init__(self) -> None:
        self.servers: dict[str, Server] = {}
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- the loop thread ----------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="kimi-mcp", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _submit(self, coro: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())

    # -- starting and stopping ----------------------------------------------------------
    def sync(self, specs: Mapping[str, ServerSpec], timeout: float, cwd: str | None = None) -> None:
        """Run exactly ``specs``: start the new and changed ones, stop the rest; wait (at most
        ``timeout``) until every server is ready or failed."""
        with self._lock:
            for name in [n for n, s in self.servers.items() if specs.get(n) != s.spec]:
                self._stop(self.servers.pop(name), timeout)
            for name, spec in specs.items():
                if name not in self.servers:
                    self.servers[name] = self._start(spec, timeout, cwd)
            waiting = list(self.servers.values())
        deadline = time.monotonic() + timeout + 1.0
        for server in waiting:
            if not server.ready.wait(max(0.0, deadline - time.monotonic())):
                server.fail(f"did not start within {timeout:g} s (Kimi.mcp_timeout)")

    def restart(self, specs: Mapping[str, ServerSpec], timeout: float, cwd: str | None = None) -> None:
        self.stop_all(timeout)
        self.sync(specs, timeout, cwd)

    def _start(self, spec: ServerSpec, timeout: float, cwd: str | None) -> Server:
        server = Server(spec)
        if spec.command:
            server.stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115 (closed when the server stops)

        async def begin() -> None:
            server.stop = asyncio.Event()
            server.task = asyncio.get_running_loop().create_task(self._run(server, timeout, cwd))

        try:
            self._submit(begin()).result(timeout)
        except Exception as error:
            server.fail(f"could not start: {_why(error)}")
        return server

    async def _run(self, server: Server, timeout: float, cwd: str | None) -> None:
        import anyio
        from mcp import ClientSession

        spec = server.spec
        try:
            async with AsyncExitStack() as stack:
                if spec.url:
                    import httpx2
                    from mcp.client.streamable_http import streamable_http_client

                    http = httpx2.AsyncClient(headers=dict(spec.headers),
                                              timeout=httpx2.Timeout(timeout, read=timeout))
                    await stack.enter_async_context(http)
                    streams = await stack.enter_async_context(streamable_http_client(spec.url, http_client=http))
                else:
                    from mcp import StdioServerParameters, stdio_client

                    params = StdioServerParameters(command=spec.command or "", args=list(spec.args),
                                                   env=dict(spec.env) or None, cwd=spec.cwd or cwd)
                    streams = await stack.enter_async_context(stdio_client(params, errlog=server.stderr))
                session = await stack.enter_async_context(
                    ClientSession(streams[0], streams[1], read_timeout_seconds=timeout))
                with anyio.fail_after(timeout):
                    await session.initialize()
                    tools, listed = await _list_tools(session)
                if server.state != "starting":  # given up on meanwhile: leave (the process stops)
                    return
                server.tools, server.listed, server.session = tools, listed, session
                server.state = "ready"
                server.ready.set()
                await server.stop.wait()
                if server.state == "ready":
                    server.state = "stopped"
        except BaseException as error:
            if server.state in ("starting", "ready"):
                started = server.state == "ready"
                if isinstance(error, TimeoutError) and not started:
                    server.fail(f"did not start within {timeout:g} s (Kimi.mcp_timeout)")
                else:
                    server.fail(("stopped: " if started else "failed to start: ") + _why(error))
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            server.session = None
            server.ready.set()

    def _stop(self, server: Server, timeout: float) -> None:
        self._stop_many([server], timeout)

    def _stop_many(self, servers: list[Server], timeout: float) -> None:
        """Stop ``servers`` together (each stdio server gets the SDK's grace period, then is
        terminated), waiting a bounded time."""
        loop = self._loop
        waits = []
        for server in servers:
            if server.task is None or loop is None:
                continue

            async def end(server: Server = server) -> None:
                if server.stop is not None:
                    server.stop.set()
                try:
                    await asyncio.wait_for(asyncio.shield(server.task), timeout)
                except (asyncio.TimeoutError, Exception):
                    server.task.cancel()

            waits.append(self._submit(end()))
        deadline = time.monotonic() + timeout + 8.0  # the SDK gives a stdio server ~6 s to go
        for waiting in waits:
            try:
                waiting.result(max(0.1, deadline - time.monotonic()))
            except Exception:
                pass
        for server in servers:
            if server.state != "failed":
                server.state = "stopped"
            if server.stderr is not None:
                try:
                    server.stderr.close()
                except OSError:
                    pass

    def stop_all(self, timeout: float = 10.0) -> None:
        with self._lock:
            servers, self.servers = list(self.servers.values()), {}
        self._stop_many(servers, timeout)

    def close(self) -> None:
        """Stop every server and the loop thread (``%unload_ext``, kernel exit)."""
        self.stop_all()
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5.0)
            if not thread.is_alive():
                loop.close()

    # -- calls ---------------------------------------------------------------------------
    def call(self, server: Server, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        """The raw CallToolResult; raises on a failure (after marking the server failed when
        the connection is gone or the call timed out)."""
        import anyio

        session = server.session
        if session is None or server.state != "ready":
            raise RuntimeError(f"the server is {server.state}" + (f" ({server.problem})" if server.problem else ""))

        async def call() -> Any:
            with anyio.fail_after(timeout):
                return await session.call_tool(tool, arguments, read_timeout_seconds=timeout)

        future = self._submit(call())
        try:
            return future.result(timeout + 2.0)
        except (TimeoutError, FutureTimeout):
            future.cancel()
            self._retire(server, f"stopped after a call to {tool} took over {timeout:g} s (Kimi.mcp_timeout)")
            raise TimeoutError(f"no answer within {timeout:g} s (Kimi.mcp_timeout); the server was stopped") from None
        except KeyboardInterrupt:
            future.cancel()
            raise
        except Exception as error:
            if not _tool_level(error):
                self._retire(server, f"stopped: {_why(error)} during a call to {tool}")
            raise

    def _retire(self, server: Server, why: str) -> None:
        server.fail(why)
        if server.stop is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.stop.set)


def _tool_level(error: BaseException) -> bool:
    """An error of this call only (a JSON-RPC error answer, input the client cannot give),
    not a dead connection: the server stays."""
    import anyio

    while getattr(error, "exceptions", None):
        error = error.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(error, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream,
                          ConnectionError, OSError, EOFError)):
        return False
    return "connection closed" not in str(error).lower()


async def _list_tools(session: Any) -> tuple[list[Any], int]:
    tools: list[Any] = []
    cursor = None
    listed = 0
    for _ in range(50):  # pages
        if cursor is None:
            page = await session.list_tools()
        else:
            from mcp.types import PaginatedRequestParams

            page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        for tool in page.tools:
            listed += 1
            if len(tools) < MAX_LISTED:
                tools.append(tool)
        cursor = getattr(page, "next_cursor", None)
        if not cursor:
            break
    return tools, listed


_HUB: McpHub | None = None
_HUB_LOCK = threading.Lock()


def hub() -> McpHub:
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            _HUB = McpHub()
            atexit.register(stop_all)
        return _HUB


def stop_all() -> None:
    """Stop every MCP server of this kernel (``%unload_ext``, kernel exit)."""
    global _HUB
    with _HUB_LOCK:
        current, _HUB = _HUB, None
    if current is not None:
        current.close()


def available() -> bool:
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True


# -- the tools a turn offers -------------------------------------------------------------------

@dataclass
class Offered:
    server: Server
    tool: Any
    name: str
    schema: dict[str, Any]

    @property
    def read_only(self) -> bool:
        annotations = getattr(self.tool, "annotations", None)
        return bool(getattr(annotations, "read_only_hint", False))


def _safe_name(server: str, tool: str, taken: set[str]) -> str:
    base = _NAME.sub("_", f"{server}{SEPARATOR}{tool}")[:64]
    name, n = base, 1
    while name in taken:
        n += 1
        suffix = f"_{n}"
        name = base[: 64 - len(suffix)] + suffix
    return name


def _schema(name: str, server: str, tool: Any, secrets: tuple[str, ...]) -> dict[str, Any]:
    from ..secrets import redact_text

    description = (getattr(tool, "description", None) or getattr(tool, "title", None) or "").strip()
    description = f"[MCP server {server}] " + description
    if len(description) > DESCRIPTION_CHARS:
        description = description[:DESCRIPTION_CHARS] + "…"
    parameters = getattr(tool, "input_schema", None)
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        parameters = {"type": "object", "properties": {}}
    try:
        encoded = json.dumps(parameters)
    except (TypeError, ValueError):
        encoded = ""
    if not encoded or len(encoded) > SCHEMA_BYTES:
        parameters = {"type": "object", "properties": {}}
        description += " (its argument schema was too large to send; pass a JSON object)"
    if secrets:
        description = redact_text(description, secrets)
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


class McpTools:
    """The MCP tools of one agent turn: their schemas, and running one call through the gate."""

    def __init__(self, offered: list[Offered], settings: Any, notices: list[str]) -> None:
        self.offered = {o.name: o for o in offered}
        self.names = frozenset(self.offered)
        self.settings = settings
        self.notices = notices

    def schemas(self) -> list[dict[str, Any]]:
        return [o.schema for o in self.offered.values()]

    def execute(self, turn: Any, call: Any, approver: Callable[[str, str, str], Any]) -> ToolResult:
        from ..secrets import secrets_of
        from .approval import DENIED

        emit, settings = turn.emit, self.settings
        offered = self.offered[call.name]
        secrets = secrets_of(settings)
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as error:
            emit(ToolCallStarted(call.id, call.name, call.arguments))
            result = ToolResult(f"Invalid arguments for {call.name}: {error}", error="invalid arguments")
            emit(ToolCallFinished(call.id, result.text, result.error, 0.0))
            return result
        trusted = offered.server.spec.trust == "read-only" and offered.read_only
        if not trusted:
            shown = f"{offered.server.spec.name}: {offered.tool.name}\n" + json.dumps(
                arguments, indent=2, ensure_ascii=False)[:4000]
            emit(ApprovalRequested(call.id, call.name, shown))
            decision = approver(call.id, call.name, shown)
            emit(ApprovalResolved(call.id, bool(decision.approved), decision.how))
            if not decision.approved:
                emit(ToolCallFinished(call.id, DENIED, "denied", 0.0))
                return ToolResult(DENIED, error="denied")
        emit(ToolCallStarted(call.id, call.name, call.arguments))
        began = time.monotonic()
        result = self._call(offered, arguments, secrets)
        emit(ToolCallFinished(call.id, result.text, result.error, round(time.monotonic() - began, 3)))
        return result

    def _call(self, offered: Offered, arguments: dict[str, Any], secrets: tuple[str, ...]) -> ToolResult:
        try:
            raw = hub().call(offered.server, offered.tool.name, arguments, float(self.settings.mcp_timeout))
        except KeyboardInterrupt:
            raise
        except Exception as error:
            text = _clip(f"The MCP tool {offered.name} failed: {_why(error)}", 2000, secrets)
            return ToolResult(text, error="mcp error")
        return convert_result(raw, self.settings.image_max_size, secrets)


def convert_result(raw: Any, image_max_size: tuple[int, int], secrets: Iterable[str] = ()) -> ToolResult:
    """A CallToolResult as a ToolResult: text parts joined, images as image parts (at most
    `MAX_IMAGES`), everything else named; masked and cut to the tool result size."""
    secrets = tuple(secrets)
    pieces: list[str] = []
    images: list[dict[str, Any]] = []
    total = 0  # characters of text content; each part is cut before it is joined (a 10 MB answer)

    def add(text: str) -> None:
        nonlocal total
        room = RESULT_CHARS + 256 - sum(len(p) for p in pieces)  # slack: a key across the cut is masked whole
        if room > 0:
            pieces.append(text[:room])
        total += len(text) + 1

    def image(data: Any, mime: str) -> None:
        if len(images) >= MAX_IMAGES:
            add(f"[{mime} image not sent: more than {MAX_IMAGES} images]")
            return
        try:
            from ..context import image_part

            raw_bytes = base64.b64decode(data, validate=False) if isinstance(data, str) else bytes(data)
            images.append(image_part(raw_bytes, max_size=image_max_size))
            add("[image attached below]")
        except Exception as error:
            add(f"[an image that could not be read: {type(error).__name__}]")

    for part in getattr(raw, "content", None) or []:
        kind = getattr(part, "type", None)
        if kind == "text":
            add(str(getattr(part, "text", "")))
        elif kind == "image":
            image(getattr(part, "data", ""), str(getattr(part, "mime_type", "image")))
        elif kind == "resource":
            resource = getattr(part, "resource", None)
            text = getattr(resource, "text", None)
            uri = str(getattr(resource, "uri", ""))[:200]
            mime = str(getattr(resource, "mime_type", None) or "")
            if isinstance(text, str):
                add(f"[resource {uri}]\n{text}")
            elif mime.startswith("image/"):
                image(getattr(resource, "blob", ""), mime)
            else:
                add(f"[binary resource {uri} ({mime or 'unknown type'}) not sent]")
        elif kind == "resource_link":
            add(f"[resource link {str(getattr(part, 'uri', ''))[:200]}]")
        else:
            add(f"[{kind or 'unknown'} content not sent]")
    structured = getattr(raw, "structured_content", None)
    if not pieces and structured is not None:
        try:
            add(json.dumps(structured, ensure_ascii=False)[: RESULT_CHARS + 1])
        except (TypeError, ValueError):
            add("[structured content that is not JSON]")
    text = _clip("\n".join(pieces) or "(no content)", len("\n".join(pieces)) + 1, secrets)[:RESULT_CHARS]
    if total - 1 > RESULT_CHARS:
        text += f"\n… ({total - 1 - RESULT_CHARS:,} more characters cut)"
    failed = bool(getattr(raw, "is_error", False))
    return ToolResult(text, error="tool error" if failed else None, images=images)


def _start_timeout(settings: Any) -> float:
    return max(float(settings.mcp_timeout), START_SECONDS)


def for_turn(settings: Any, emit: Callable[[Any], None] | None = None, cwd: str | None = None) -> McpTools | None:
    """The MCP tools of one agent turn (starting servers as needed); None when none are configured."""
    specs, problems = load_specs(settings, cwd)
    notices = list(problems)
    if not specs:
        if emit is not None:
            for line in notices:
                emit(Notice(f"MCP: {line}", "warning"))
        return None
    if not available():
        if emit is not None:
            emit(Notice(INSTALL, "warning"))
        return None
    current = hub()
    current.sync(specs, _start_timeout(settings), cwd or os.getcwd())
    from ..secrets import secrets_of

    secrets = secrets_of(settings)
    offered: list[Offered] = []
    taken: set[str] = set()
    for name, server in list(current.servers.items()):
        if server.state != "ready":
            notices.append(f"{name}: {server.problem or server.state} (%kimi mcp restart tries again)")
            continue
        shown = 0
        for tool in server.tools:
            if len(offered) >= MAX_TOOLS:
                break
            safe = _safe_name(name, str(tool.name), taken)
            taken.add(safe)
            offered.append(Offered(server, tool, safe, _schema(safe, name, tool, secrets)))
            shown += 1
        if shown < server.listed:
            notices.append(f"{name} lists {server.listed} tools; the first {shown} are offered "
                           f"(at most {MAX_TOOLS} MCP tools in all).")
    if emit is not None:
        for line in notices:
            emit(Notice(f"MCP: {line}", "warning"))
    return McpTools(offered, settings, notices)


def report(settings: Any, cwd: str | None = None, restart: bool = False) -> str:
    """What ``%kimi mcp`` prints: each server, its state and its tools."""
    specs, problems = load_specs(settings, cwd)
    lines = [f"Problem: {p}" for p in problems]
    if not specs:
        lines.append("No MCP servers configured. Put {\"mcpServers\": {...}} in .kimi/mcp.json beside the notebook "
                     "or ~/.kimi/mcp.json, or set %config Kimi.mcp_config (see the README).")
        return "\n".join(lines)
    if not available():
        lines.append(INSTALL)
        return "\n".join(lines)
    current = hub()
    if restart:
        current.restart(specs, _start_timeout(settings), cwd or os.getcwd())
    else:
        current.sync(specs, _start_timeout(settings), cwd or os.getcwd())
    from ..secrets import redact_text, secrets_of

    secrets = secrets_of(settings)  # args and stderr could quote the key
    for name, server in current.servers.items():
        spec = server.spec
        head = f"{name}: {server.state} · {spec.where()} · from {spec.source}" + (
            " · trust read-only" if spec.trust == "read-only" else "")
        if server.state != "ready":
            lines.append(f"{head} · {server.problem or ''}".rstrip(" ·"))
            continue
        taken: set[str] = set()
        names = []
        for tool in server.tools:
            safe = _safe_name(name, str(tool.name), taken)
            taken.add(safe)
            names.append(safe + (" (read-only)" if getattr(getattr(tool, "annotations", None),
                                                            "read_only_hint", False) else ""))
        shown = ", ".join(names[:30]) + (f", … ({len(names) - 30} more)" if len(names) > 30 else "")
        lines.append(f"{head} · {server.listed} tool{'' if server.listed == 1 else 's'}: {shown or '(none)'}")
    return redact_text("\n".join(lines), secrets) if secrets else "\n".join(lines)
