"""Remember the plots each cell displayed, so a later prompt can attach them.

With matplotlib's inline backend a figure is rendered to PNG, published as display data and
closed when its cell ends, so by the time ``%%kimi --plot`` runs there is no Figure left to
save. :class:`PlotCapture` wraps ``shell.display_pub.publish`` and keeps the ``image/png`` /
``image/jpeg`` payloads of the last few execution counts, keeping memory bounded.

It also remembers, per matplotlib Figure still alive, the PNG the inline backend displayed for
it (``shell.display_formatter.format`` is wrapped too), so ``{fig}`` of a figure the user
already saw attaches those bytes instead of rendering it again (:func:`displayed_png`). After
recording, the figure is marked not stale; any later change to one of its artists marks it
stale again (matplotlib propagates that up to the figure), and then it is rendered afresh.

Attribution: IPython increments ``execution_count`` *before* the ``post_execute`` event in
which the inline backend flushes figures, so the count is recorded at ``pre_execute`` instead
of being read at publish time.
"""

from __future__ import annotations

import base64
import binascii
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["PlotCapture", "displayed_png", "get_plot_capture"]

_IMAGE_MIMES = ("image/png", "image/jpeg")
_SHELL_ATTR = "_kimi_plot_capture"
# Figure -> the PNG bytes last displayed for it; an entry goes when its figure is collected.
_DISPLAYED: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def displayed_png(fig: Any) -> bytes | None:
    """The PNG the notebook displayed for ``fig``, if the figure has not changed since."""
    try:
        png = _DISPLAYED.get(fig)
    except TypeError:
        return None
    if png is None or getattr(fig, "stale", True):
        return None
    return png


def _remember_figure(obj: Any, data: Any) -> None:
    if not isinstance(data, Mapping) or "image/png" not in data:
        return
    if not type(obj).__module__.startswith("matplotlib.") or not hasattr(obj, "savefig"):
        return
    png = _decode(data["image/png"])
    if png and png.startswith(b"\x89PNG"):
        _DISPLAYED[obj] = png
        obj.stale = False  # only a change after this display makes it stale again


def _decode(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if raw.startswith((b"\x89PNG", b"\xff\xd8\xff")):
            return raw
        value = raw.decode("ascii", "ignore")
    if isinstance(value, str):
        try:
            raw = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
        return raw or None
    return None


class PlotCapture:
    """Records images published through an IPython shell, per execution count.

    ``install(shell)`` is idempotent; ``uninstall()`` restores the publisher. Keeps at most
    ``max_cells`` execution counts, ``max_per_cell`` images per count (the latest) and about
    ``max_bytes`` in all (oldest counts are dropped first).
    """

    def __init__(self, max_cells: int = 20, max_per_cell: int = 8, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_cells = max(1, int(max_cells))
        self.max_per_cell = max(1, int(max_per_cell))
        self.max_bytes = max(1, int(max_bytes))
        self._store: OrderedDict[int, list[bytes]] = OrderedDict()
        self._total = 0
        self._lock = threading.RLock()
        self._shell: Any = None
        self._hooked_pub: Any = None
        self._wrapper: Any = None
        self._previous: Any = None
        self._had_instance_attr = False
        self._formatter: Any = None
        self._format_wrapper: Any = None
        self._format_previous: Any = None
        self._format_had = False
        self._current: int | None = None
        self._pre_count: int | None = None
        # IPython 9 advances execution_count before it runs a cell that stores history,
        # IPython 8 after; learnt from the first such cell, guessed from the version before.
        self._advances_first = _ipython_major() >= 9

    # -- installation ---------------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return self._shell is not None

    def install(self, shell: Any) -> PlotCapture:
        """Start capturing on ``shell`` (re-hooks if its ``display_pub`` was replaced)."""
        if self._shell is not None and self._shell is not shell:
            self.uninstall()
        if self._shell is None:
            self._shell = shell
            self._current = _count(shell)
            for event, handler in self._handlers():
                try:
                    shell.events.register(event, handler)
                except Exception:
                    pass
        self._ensure_hook()
        return self

    def uninstall(self) -> None:
        """Stop capturing and restore the publisher; recorded plots are kept."""
        shell = self._shell
        if shell is None:
            return
        for event, handler in self._handlers():
            try:
                shell.events.unregister(event, handler)
            except Exception:
                pass
        self._unhook()
        self._unhook_format()
        self._shell = None

    def _handlers(self) -> list[tuple[str, Any]]:
        return [("pre_execute", self._on_pre_execute), ("pre_run_cell", self._on_pre_run_cell),
                ("post_run_cell", self._on_post_run_cell)]

    def running_count(self) -> int | None:
        """The execution count of the cell now running (the number its In[] prompt shows)."""
        return self._current

    def _on_pre_run_cell(self, info: Any = None) -> None:
        count = _count(self._shell) if self._shell is not None else None
        self._pre_count = count
        if count is not None and self._advances_first and getattr(info, "store_history", True):
            count -= 1
        self._current = count

    def _on_post_run_cell(self, result: Any = None) -> None:
        info = getattr(result, "info", None)
        actual = getattr(result, "execution_count", None)
        if self._pre_count is not None and isinstance(actual, int) and getattr(info, "store_history", False):
            self._advances_first = self._pre_count == actual + 1

    def _on_pre_execute(self) -> None:
        shell = self._shell
        if shell is None:
            return
        self._current = _count(shell)
        self._ensure_hook()

    def _ensure_hook(self) -> None:
        self._ensure_format_hook()
        pub = getattr(self._shell, "display_pub", None)
        if pub is None:
            return
        current = getattr(pub, "publish", None)
        if getattr(current, "_kimi_plot_capture", None) is self and pub is self._hooked_pub:
            return
        if self._hooked_pub is not None and self._hooked_pub is not pub:
            self._unhook()
        if current is None:
            return
        self._had_instance_attr = "publish" in getattr(pub, "__dict__", {})
        self._previous = pub.__dict__.get("publish") if self._had_instance_attr else None
        capture = self

        def publish(*args: Any, **kwargs: Any) -> Any:
            if capture._wrapper is publish:
                try:
                    capture.record(kwargs["data"] if "data" in kwargs else args[0] if args else None)
                except Exception:
                    pass
            return current(*args, **kwargs)

        publish._kimi_plot_capture = self  # type: ignore[attr-defined]
        publish.__wrapped__ = current  # type: ignore[attr-defined]
        try:
            pub.publish = publish
        except Exception:
            return
        self._wrapper = publish
        self._hooked_pub = pub

    def _unhook(self) -> None:
        pub, wrapper = self._hooked_pub, self._wrapper
        self._hooked_pub = self._wrapper = None  # an orphaned wrapper now only passes through
        if pub is None or wrapper is None:
            return
        try:
            if pub.__dict__.get("publish") is wrapper:
                if self._had_instance_attr:
                    pub.publish = self._previous
                else:
                    del pub.publish
        except Exception:
            pass

    def _ensure_format_hook(self) -> None:
        formatter = getattr(self._shell, "display_formatter", None)
        current = getattr(formatter, "format", None)
        if current is None or (formatter is self._formatter
                               and getattr(current, "_kimi_plot_capture", None) is self):
            return
        self._unhook_format()
        capture = self

        def format(obj: Any, *args: Any, **kwargs: Any) -> Any:
            result = current(obj, *args, **kwargs)
            if capture._format_wrapper is format:
                try:
                    _remember_figure(obj, result[0])
                except Exception:
                    pass
            return result

        format._kimi_plot_capture = self  # type: ignore[attr-defined]
        format.__wrapped__ = current  # type: ignore[attr-defined]
        had = "format" in getattr(formatter, "__dict__", {})
        previous = formatter.__dict__.get("format") if had else None
        try:
            formatter.format = format
        except Exception:
            return
        self._formatter, self._format_wrapper = formatter, format
        self._format_previous, self._format_had = previous, had

    def _unhook_format(self) -> None:
        formatter, wrapper = self._formatter, self._format_wrapper
        self._formatter = self._format_wrapper = None
        if formatter is None or wrapper is None:
            return
        try:
            if formatter.__dict__.get("format") is wrapper:
                if self._format_had:
                    formatter.format = self._format_previous
                else:
                    del formatter.format
        except Exception:
            pass

    # -- recording ------------------------------------------------------------------------

    def record(self, data: Any, count: int | None = None) -> None:
        """Store the first image in a display-data bundle under ``count`` (default: current)."""
        if not isinstance(data, Mapping):
            return
        image = None
        for mime in _IMAGE_MIMES:
            if mime in data:
                image = _decode(data[mime])
                if image:
                    break
        if not image:
            return
        if count is None:
            count = self._current if self._current is not None else _count(self._shell)
        if count is None:
            return
        with self._lock:
            images = self._store.pop(count, [])
            images.append(image)
            self._total += len(image)
            while len(images) > self.max_per_cell:
                self._total -= len(images.pop(0))
            self._store[count] = images
            while len(self._store) > self.max_cells or (
                self._total > self.max_bytes and len(self._store) > 1
            ):
                _old, dropped = self._store.popitem(last=False)
                self._total -= sum(len(x) for x in dropped)

    def plots_for(self, count: int) -> list[bytes]:
        """Images (PNG or JPEG bytes) displayed while cell ``count`` ran, oldest first."""
        with self._lock:
            return list(self._store.get(count, ()))

    def last_plots(self, before_count: int | None = None) -> list[bytes]:
        """Images of the latest cell before ``before_count`` that displayed any (for ``--plot``)."""
        with self._lock:
            counts = [c for c in self._store if before_count is None or c < before_count]
            return list(self._store[max(counts)]) if counts else []

    def counts(self) -> list[int]:
        """Execution counts with captured images, ascending."""
        with self._lock:
            return sorted(self._store)

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
            self._total = 0


def _ipython_major() -> int:
    try:
        import IPython

        return int(IPython.version_info[0])
    except Exception:
        return 8


def _count(shell: Any) -> int | None:
    value = getattr(shell, "execution_count", None)
    return value if isinstance(value, int) else None


def get_plot_capture(shell: Any) -> PlotCapture:
    """The shell's shared :class:`PlotCapture`, created and installed on first use."""
    capture = getattr(shell, _SHELL_ATTR, None)
    if not isinstance(capture, PlotCapture):
        capture = PlotCapture()
        try:
            setattr(shell, _SHELL_ATTR, capture)
        except Exception:
            pass
    return capture.install(shell)
