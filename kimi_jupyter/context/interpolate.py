"""Build a multimodal message from a prompt template with ``{name}`` placeholders.

A ``%%kimi`` cell is prose that often contains pasted code, JSON or f-strings, so only the
narrowest syntax is special: ``{name}`` (a plain identifier), ``{In[3]}`` and ``{Out[3]}``.
Anything else in braces stays exactly as typed. Doubled braces escape a placeholder the way
``str.format`` does (``{{name}}`` gives ``{name}``); braces around anything else are left alone,
so ``{"a": {"b": 1}}`` survives. Values become content parts: text, frame summaries, images
(preceded by a ``[image: name]`` label) and videos, in template order.

With a ``media`` sink (``context/media.py``, which the magic, ``ask()`` and the sidebar pass),
big images and videos go through the Files API as ``ms://`` parts, and a path to a document
(pdf, docx, xlsx, pptx, txt, md) becomes a system message holding its text, with a
``[document: name]`` marker in the prompt. Without one, media go inline and such paths stay text.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Union

from ._detect import is_numpy_array
from ._frame_model import reason
from ._repr import bounded_repr, clip, type_name
from .documents import document_kind, existing_file_suffix
from .errors import ContextError
from .frames import is_frame, summarize_frame
from .images import DEFAULT_MAX_SIZE, IMAGE_EXTENSIONS, image_part_with_info, is_image_like
from .video import DEFAULT_MAX_VIDEO_BYTES, VIDEO_MIME_TYPES, inline_video_limit, video_part_with_info

__all__ = ["HistorySource", "array_summary", "build_content", "referenced_names", "value_parts"]

#: Where captured plots come from, by execution count: a ``PlotCapture`` (anything with
#: ``plots_for(n)``), a callable ``n -> [png bytes]`` or a mapping ``{n: [png bytes]}``.
HistorySource = Union[Callable[[int], Sequence[bytes]], Mapping[int, Sequence[bytes]], Any, None]

_FIELD = re.compile(r"(?<!\{)(\{+)((?:In|Out)\[\d+\]|[^\W\d]\w*)(\}+)(?!\})")
_HISTORY = re.compile(r"(In|Out)\[(\d+)\]")


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _History:
    kind: str  # "In" or "Out"
    index: int

    @property
    def label(self) -> str:
        return f"{self.kind}[{self.index}]"


_Segment = Union[_Text, _Name, _History]


def _segments(template: str) -> tuple[_Segment, ...]:
    """The template's text and placeholders. Short templates are remembered (a map() run fills
    one template per row); a long prompt is parsed each time, so no cache holds it."""
    if len(template) <= _CACHED_TEMPLATE_CHARS:
        return _cached_segments(template)
    return _parse_segments(template)


_CACHED_TEMPLATE_CHARS = 4096


@functools.lru_cache(maxsize=256)
def _cached_segments(template: str) -> tuple[_Segment, ...]:
    return _parse_segments(template)


def _parse_segments(template: str) -> tuple[_Segment, ...]:
    out: list[_Segment] = []
    buf: list[str] = []
    pos = 0
    for m in _FIELD.finditer(template):
        opens, body, closes = m.groups()
        k, c = len(opens), len(closes)
        history = _HISTORY.fullmatch(body)
        if k % 2 != c % 2 or not (history or body.isidentifier()):
            continue  # stays as typed, as part of the surrounding text
        buf.append(template[pos : m.start()])
        pos = m.end()
        if k % 2 == 0:  # escaped: {{name}} -> {name}
            buf.append("{" * (k // 2) + body + "}" * (c // 2))
            continue
        buf.append("{" * (k // 2))
        out.append(_Text("".join(buf)))
        buf = ["}" * (c // 2)]
        out.append(_History(history.group(1), int(history.group(2))) if history else _Name(body))
    buf.append(template[pos:])
    out.append(_Text("".join(buf)))
    return tuple(s for s in out if not (isinstance(s, _Text) and not s.text))


def referenced_names(template: str) -> list[str]:
    """Plain ``{name}`` placeholders in ``template``, unique, in order of appearance.

    ``{In[n]}``/``{Out[n]}`` references, escaped ``{{name}}`` and any other braces are not
    included.
    """
    seen: dict[str, None] = {}
    for seg in _segments(template):
        if isinstance(seg, _Name):
            seen.setdefault(seg.name, None)
    return list(seen)


# ---------------------------------------------------------------------------------------
# building parts


class _Parts:
    """Accumulates content parts, merging adjacent text."""

    def __init__(self) -> None:
        self.parts: list[dict[str, Any]] = []
        self._text: list[str] = []
        self._newline_next = False

    def text(self, text: str) -> None:
        if not text:
            return
        if self._newline_next and not text.startswith("\n"):
            text = "\n" + text
        self._newline_next = False
        self._text.append(text)

    def block(self, text: str) -> None:
        """Text that must stand on its own lines (a fenced frame summary)."""
        needs_break = not self._text[-1].endswith("\n") if self._text else bool(self.parts)
        if needs_break:
            self._text.append("\n")
        self._text.append(text)
        self._newline_next = True

    def media(self, part: dict[str, Any]) -> None:
        self._flush()
        self._newline_next = False
        self.parts.append(part)

    def _flush(self) -> None:
        if self._text:
            self.parts.append({"type": "text", "text": "".join(self._text)})
            self._text = []

    def result(self) -> list[dict[str, Any]]:
        self._flush()
        return self.parts or [{"type": "text", "text": ""}]


def _fenced(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


_MEDIA_SUFFIXES = frozenset(IMAGE_EXTENSIONS) | frozenset(VIDEO_MIME_TYPES)


def _media_kind(value: Any) -> str | None:
    """ "image"/"video" if ``value`` is a path (str/PathLike) to an existing media file."""
    suffix = existing_file_suffix(value, _MEDIA_SUFFIXES)
    if suffix is None:
        return None
    return "image" if suffix in IMAGE_EXTENSIONS else "video"


def array_summary(arr: Any, name: str | None = None, limit: int = 4000) -> str:
    """Shape, dtype, basic statistics and a few values of a numpy array, bounded."""
    np = sys.modules["numpy"]
    title = f"numpy.ndarray {name}" if name else "numpy.ndarray"
    lines = [f"{title}: shape {tuple(arr.shape)}, dtype {arr.dtype}"]
    try:
        if arr.size and arr.dtype.kind in "biuf":
            if arr.size > 1_000_000:
                pos = np.random.default_rng(0).choice(arr.size, size=100_000, replace=False)
                flat = np.asarray(arr.flat[pos], dtype=np.float64)
                scope = " (from a random sample of 100,000 values)"
            else:
                flat = np.asarray(arr, dtype=np.float64).ravel()
                scope = ""
            nan = int(np.count_nonzero(np.isnan(flat)))
            finite = flat[np.isfinite(flat)]
            if finite.size:
                stats = (
                    f"min {finite.min():.6g}, max {finite.max():.6g}, "
                    f"mean {finite.mean():.6g}, std {finite.std():.6g}"
                )
            else:
                stats = "no finite values"
            lines.append(stats + (f", {nan:,} NaN" if nan else "") + scope)
    except Exception as exc:
        lines.append(f"(stats unavailable: {reason(exc)})")
    try:
        values = np.array2string(arr, threshold=60, edgeitems=3, precision=5, max_line_width=100)
    except Exception as exc:
        values = f"(values unavailable: {reason(exc)})"
    lines.append(values)
    return clip("\n".join(lines), limit, " …(truncated)")


def _history_plots(history: HistorySource, index: int) -> list[bytes]:
    if history is None:
        return []
    try:
        if hasattr(history, "plots_for"):
            got = history.plots_for(index)
        elif isinstance(history, Mapping):
            got = history.get(index, ())
        elif callable(history):
            got = history(index)
        else:
            return []
        return [bytes(x) for x in (got or ()) if isinstance(x, (bytes, bytearray, memoryview))]
    except Exception:
        return []


def _is_matplotlib_value(value: Any) -> bool:
    def from_mpl(v: Any) -> bool:
        module = getattr(type(v), "__module__", "") or ""
        return isinstance(module, str) and module.startswith("matplotlib")

    if isinstance(value, (list, tuple)):
        return bool(value) and from_mpl(value[0])
    return from_mpl(value)


@dataclass(frozen=True)
class _Options:
    frame_budget: int
    image_max_size: tuple[int, int]
    repr_chars: int
    video_max_bytes: int
    media: Any = None  # a MediaSink (context/media.py): Files API uploads and documents


def value_parts(
    value: Any,
    label: str,
    *,
    frame_budget: int = 1500,
    image_max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
    repr_chars: int = 4000,
    video_max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
    secrets: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The content parts one value becomes when interpolated as ``{label}``.

    ``secrets`` (`kimi_jupyter.secrets.secrets_of`) are masked in the parts."""
    out = _Parts()
    _add_value(out, value, label, _Options(frame_budget, image_max_size, repr_chars, video_max_bytes))
    return _redacted(out.result(), secrets)


def _redacted(parts: list[dict[str, Any]], secrets: Iterable[str]) -> list[dict[str, Any]]:
    if not secrets:
        return parts
    from ..secrets import redact

    return [redact(p, secrets) if p.get("type") == "text" else p for p in parts]


def _add_media(out: _Parts, value: Any, label: str, kind: str, opts: _Options) -> None:
    if kind == "video":
        uploaded = opts.media.video_part(value, inline_video_limit(opts.video_max_bytes)) if opts.media else None
        part = uploaded or video_part_with_info(value, max_bytes=opts.video_max_bytes)[0]
        out.text(f"[video: {label}]")
        out.media(part)
        return
    source = f"image file '{os.fspath(value)}'" if isinstance(value, (str, PurePath)) else f"{{{label}}}"
    part, _info = image_part_with_info(value, max_size=opts.image_max_size, source=source)
    if opts.media is not None:
        part = opts.media.image_part(part, label)
    out.text(f"[image: {label}]")
    out.media(part)


def _add_document(out: _Parts, value: Any, label: str, opts: _Options) -> None:
    """A document path: its text goes into a system message (``MediaSink.document``)."""
    out.text(opts.media.document(value, label))


class DataText(str):
    """A value that came from data (a row's field, a frame's cell): always text, never a path
    to read, whatever it names. ``map()`` marks every row field so unless the user asked for a
    column of files by name (``files=["path"]``)."""

    __slots__ = ()


def _add_value(out: _Parts, value: Any, label: str, opts: _Options) -> None:
    if type(value) is str and "." not in value:  # no file extension: plain text (a row's field)
        out.text(value)
        return
    if isinstance(value, DataText):  # data is text: files leave only when the user named them
        out.text(str(value))
        return
    try:
        if isinstance(value, (str, PurePath)) and opts.media is not None and document_kind(value):
            _add_document(out, value, label, opts)
            return
        if isinstance(value, str):
            kind = _media_kind(value)
            if kind:
                _add_media(out, value, label, kind, opts)
            else:
                out.text(value)
            return
        if isinstance(value, PurePath):
            kind = _media_kind(value)
            if kind:
                _add_media(out, value, label, kind, opts)
            else:
                out.text(str(value))
            return
        if is_frame(value):
            out.block(_fenced(summarize_frame(value, budget_tokens=opts.frame_budget, name=label)))
            return
        if is_image_like(value):
            _add_media(out, value, label, "image", opts)
            return
        if is_numpy_array(value):
            out.block(_fenced(array_summary(value, label, max(200, opts.frame_budget * 4))))
            return
        out.text(bounded_repr(value, opts.repr_chars))
    except ContextError:
        raise
    except Exception as exc:
        # Our own bug or an exotic object: never let it break the prompt.
        out.text(f"<{type_name(value)} {label}: could not be converted ({reason(exc)})>")


def _check(seg: _Name | _History, namespace: Mapping[str, Any], history: HistorySource) -> None:
    if isinstance(seg, _Name):
        try:
            present = seg.name in namespace
        except Exception:
            present = False
        if not present:
            raise ContextError(
                f"Name '{seg.name}' is not defined in the notebook; "
                f"define it or write {{{{{seg.name}}}}} for literal braces"
            )
        return
    if seg.kind == "In":
        inputs = namespace.get("In")
        try:
            ok = 0 < seg.index < len(inputs) and isinstance(inputs[seg.index], str)
        except Exception:
            ok = False
        if not ok:
            raise ContextError(
                f"{seg.label} is not available: no cell with execution count {seg.index} "
                f"has run in this session; write {{{{{seg.label}}}}} for literal braces"
            )
        return
    outputs = namespace.get("Out")
    try:
        has_value = isinstance(outputs, Mapping) and seg.index in outputs
    except Exception:
        has_value = False
    if not has_value and not _history_plots(history, seg.index):
        raise ContextError(
            f"{seg.label} is not available: cell {seg.index} produced no output value or "
            f"captured plot; write {{{{{seg.label}}}}} for literal braces"
        )


def build_content(
    template: str,
    namespace: Mapping[str, Any],
    *,
    frame_budget: int = 1500,
    image_max_size: tuple[int, int] = DEFAULT_MAX_SIZE,
    history: HistorySource = None,
    repr_chars: int = 4000,
    video_max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
    media: Any = None,
    secrets: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Content parts for ``template`` with placeholders filled from ``namespace``.

    ``secrets`` (`kimi_jupyter.secrets.secrets_of`) are masked in every text part, whatever
    put them there: the template, a ``{var}``, an ``{In[n]}`` source, a repr.

    Every placeholder is checked before anything is converted, so an undefined name raises
    :class:`ContextError` without side effects. ``{In[n]}`` inserts the source text of cell
    n from ``namespace["In"]``; ``{Out[n]}`` converts ``namespace["Out"][n]`` and also attaches
    the plots ``history`` captured for count n (instead of the value when that is only a
    matplotlib artist). Adjacent text is merged; the result always has at least one part.
    """
    if not isinstance(template, str):
        raise ContextError(f"the prompt must be text, not {type(template).__name__}")
    segments = _segments(template)
    for seg in segments:
        if not isinstance(seg, _Text):
            _check(seg, namespace, history)
    opts = _Options(int(frame_budget), tuple(image_max_size), int(repr_chars), int(video_max_bytes), media)  # type: ignore[arg-type]
    out = _Parts()
    for seg in segments:
        if isinstance(seg, _Text):
            out.text(seg.text)
        elif isinstance(seg, _Name):
            _add_value(out, namespace[seg.name], seg.name, opts)
        elif seg.kind == "In":
            out.text(namespace["In"][seg.index])
        else:
            _add_output(out, seg, namespace, history, opts)
    return _redacted(out.result(), secrets)


def _add_output(
    out: _Parts, seg: _History, namespace: Mapping[str, Any], history: HistorySource, opts: _Options
) -> None:
    outputs = namespace.get("Out")
    has_value = isinstance(outputs, Mapping) and seg.index in outputs
    plots = _history_plots(history, seg.index)
    value = outputs[seg.index] if has_value else None
    if has_value and not (plots and (value is None or _is_matplotlib_value(value))):
        _add_value(out, value, seg.label, opts)
    for i, png in enumerate(plots, 1):
        label = seg.label + (" plot" if len(plots) == 1 else f" plot {i} of {len(plots)}")
        part, _info = image_part_with_info(
            png, max_size=opts.image_max_size, source=f"the plot of {seg.label}"
        )
        out.text(f"[image: {label}]")
        out.media(part)
