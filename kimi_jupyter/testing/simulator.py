"""``KimiSimulator``: the public face of the loopback Kimi server.

It owns the configuration, the shared state (queues, rules, faults, records) and the
HTTP server thread, and offers the small API tests, notebooks and benchmarks use::

    with KimiSimulator(api_key="sk-test-simulator") as sim:
        sim.queue(Reply(text="Hello", reasoning="The user greets me."))
        httpx.post(sim.base_url + "/chat/completions", ...)
        assert sim.chat_requests[0].headers["Authorization"] == "Bearer sk-test-simulator"
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from .app import AppConfig, SimulatorApp
from .dialects import DIALECTS, get_dialect
from .faults import Fault
from .files import FileLimits, FileStore, StoredFile
from .ratelimit import RateLimits
from .replies import Outcome, Predicate, Reply, Rule, load_rules
from .server import LoopbackServer
from .state import RecordedRequest, SimulatorState

Match = str | re.Pattern[str] | Predicate | None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class KimiSimulator:
    """A Kimi-compatible HTTP server on a loopback address, in a background thread.

    ``api_key``: the only key accepted (``Authorization: Bearer <key>``); None accepts any
    key or none. ``dialect``: what ``/v1`` speaks (``moonshot``, ``openrouter``, ``vllm``,
    ``llamacpp``, ``cloudsway``); every dialect is also reachable at :meth:`url_for`.
    ``models``: model ids served, one list for every dialect or a mapping dialect -> list.
    ``context_limit``: a prompt-token limit over every model's own window (None: each model's
    window, see ``models.py``; ``/models`` reports the smaller of the two). ``script``: a JSON rules file to load.
    ``chunk_delay``: seconds between streamed chunks for replies that set none.
    ``max_body_bytes``: larger bodies get 413. ``balance``: what ``/users/me/balance`` says.
    ``batch_speed``: how much faster than the wall clock the Batch API's clock runs
    (``/files`` and ``/batches``, see ``batches.py``).
    ``file_limits``: the Files API's limits (:class:`~kimi_jupyter.testing.files.FileLimits`;
    Moonshot's 100 MB a file, 1,000 files, 10 GB by default); :attr:`files` is the store.
    ``rate_limits``: requests/tokens per window, announced in ``x-ratelimit-*`` headers and
    enforced with 429s (:class:`~kimi_jupyter.testing.ratelimit.RateLimits`; None: no limits).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        dialect: str = "moonshot",
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        context_limit: int | None = None,
        script: str | os.PathLike[str] | None = None,
        chunk_delay: float = 0.0,
        max_body_bytes: int = 100 * 1024 * 1024,
        balance: float = 50.0,
        batch_speed: float = 1.0,
        file_limits: FileLimits | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        get_dialect(dialect)
        if not is_loopback(host):
            raise ValueError(f"the simulator only listens on loopback addresses, not {host!r}")
        self.host = host
        self.dialect = dialect
        self._requested_port = port
        self._state = SimulatorState()
        self._config = AppConfig(
            api_key=api_key,
            dialect=dialect,
            models=_models_by_dialect(models),
            context_limit=context_limit,
            balance=balance,
            chunk_delay=chunk_delay,
            max_body_bytes=max_body_bytes,
            batch_speed=batch_speed,
            file_limits=file_limits or FileLimits(),
            rate_limits=rate_limits,
        )
        self._files = FileStore(self._config.file_limits)
        self._app: SimulatorApp | None = None
        self._server: LoopbackServer | None = None
        self._port: int | None = None
        if script is not None:
            self.load_script(script)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> KimiSimulator:
        """Bind the port and serve in a background thread (no-op when already running)."""
        if self._server is None:
            self._app = self._app or SimulatorApp(self._state, self._config, self._files)
            server = LoopbackServer(
                self._app,
                self.host,
                self._requested_port,
                self._config.max_read_bytes,
            )
            server.start()
            self._server, self._port = server, server.port
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving: wakes stalled streams, closes connections, joins threads (bounded)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(timeout)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> KimiSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<KimiSimulator {self.dialect} {where}>"

    # -- addresses -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started; use start() or a with block")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL of the default dialect: ``http://127.0.0.1:PORT/v1``."""
        return self.root_url + "/v1"

    def url_for(self, dialect: str, endpoint: str = "kimi-k2.5") -> str:
        """The base URL that speaks ``dialect``; ``endpoint`` is Cloudsway's endpoint path."""
        get_dialect(dialect)
        if dialect == "cloudsway":
            return f"{self.root_url}/cloudsway/v1/ai/{endpoint}"
        return f"{self.root_url}/{dialect}/v1"

    # -- scripting ---------------------------------------------------------------------------
    def queue(self, *replies: Reply | str | Mapping[str, Any] | Any) -> None:
        """Queue replies (FIFO, one per chat request); a str is plain text, a callable
        ``(messages) -> Reply`` is called when its turn comes."""
        for reply in replies:
            self._state.queue(_outcome(reply))

    def on(
        self,
        match: Match,
        reply: Reply | Fault | str | Mapping[str, Any] | Any,
        *,
        after_tool: str | None = None,
        step: int | None = None,
        times: int | None = None,
    ) -> None:
        """Add a rule (see ``replies`` for matching): regex on the last user text or a
        predicate ``(messages) -> bool``; reusable unless ``times`` is given."""
        self._state.add_rule(Rule(_outcome(reply), match, after_tool, step, times))

    def fault(self, fault: Fault, times: int | None = 1, match: Match = None) -> None:
        """Queue ``fault`` for the next ``times`` chat requests (None: all) matching ``match``."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {fault!r}")
        self._state.add_fault(fault, times, match)

    def load_script(
        self, source: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | Mapping[str, Any]
    ) -> None:
        """Append the rules of a JSON script (a path, or the parsed JSON)."""
        for rule in load_rules(source):
            self._state.add_rule(rule)

    def reset(self) -> None:
        """Forget queued replies, rules, faults, recorded requests, cached prefixes, files and batches."""
        self._state.reset()
        self._files.clear()
        if self._app is not None:
            self._app.batches.reset()

    # -- files -----------------------------------------------------------------------------
    @property
    def files(self) -> FileStore:
        """The Files API's store: what was uploaded (``files.all()``), ``files.add(...)``."""
        return self._files

    def add_file(self, data: bytes, filename: str, purpose: str) -> StoredFile:
        """Store a file as if it had been uploaded (e.g. a batch's output file)."""
        return self._files.add(data, filename, purpose)

    def batch_fault(self, kind: str) -> None:
        """Make the next batch created ``fail_validation``, ``expire`` or ``corrupt_output``."""
        self.start()
        assert self._app is not None
        self._app.batches.add_fault(kind)

    @property
    def batch_requests(self) -> list[RecordedRequest]:
        """Chat requests the Batch API ran (recorded with an ``X-Kimi-Batch`` header)."""
        return [r for r in self.chat_requests if "x-kimi-batch" in r.headers]

    # -- recording -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a snapshot)."""
        return self._state.records()

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The ``.../chat/completions`` requests received so far (a snapshot)."""
        return [r for r in self._state.records() if r.is_chat]


def _outcome(reply: Any) -> Outcome:
    if isinstance(reply, (Reply, Fault)):
        return reply
    if isinstance(reply, (str, Mapping)):
        return Reply.from_dict(reply)
    if callable(reply):
        return cast(Outcome, reply)
    raise TypeError(f"a reply must be a Reply, Fault, str, dict or callable, not {reply!r}")


def _models_by_dialect(
    models: Sequence[str] | Mapping[str, Sequence[str]] | None,
) -> dict[str, tuple[str, ...]]:
    if models is None:
        return {}
    if isinstance(models, Mapping):
        for name in models:
            get_dialect(name)
        return {name: tuple(ids) for name, ids in models.items()}
    if isinstance(models, str):
        raise TypeError("models must be a list of ids, not a string")
    return {name: tuple(models) for name in DIALECTS}
