"""Turn a video file into a ``video_url`` content part.

Kimi takes video as a base64 data URL inside the request body, and the whole body must stay
under 100 MB, so the file size is checked before anything is read; the MIME type comes from
the file extension (mp4, mpeg, mov, avi, flv, mpg, webm, wmv, 3gp). Videos over
``Kimi.upload_threshold`` on providers with a Files API never come here: ``context/media.py``
uploads them and sends ``ms://<id>`` instead.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ContextError

__all__ = [
    "DEFAULT_MAX_VIDEO_BYTES",
    "VIDEO_MIME_TYPES",
    "VideoInfo",
    "is_video_path",
    "video_part",
    "video_part_with_info",
]

#: Default cap on the raw file size: base64 makes it ~67 MB, leaving room in a 100 MB body.
DEFAULT_MAX_VIDEO_BYTES = 50 * 1024 * 1024
#: Hard cap whatever the caller asks: the base64 text must fit in a 100 MB request body.
_BODY_LIMIT = 100 * 1000 * 1000
_HEADROOM = 2 * 1000 * 1000

VIDEO_MIME_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mpeg": "video/mpeg",
    ".mpg": "video/mpg",
    ".mov": "video/quicktime",
    ".avi": "video/avi",
    ".flv": "video/x-flv",
    ".webm": "video/webm",
    ".wmv": "video/wmv",
    ".3gp": "video/3gpp",
    ".3gpp": "video/3gpp",
}


@dataclass(frozen=True)
class VideoInfo:
    """What was sent: MIME type, raw byte count and the resolved path."""

    mime: str
    bytes: int
    path: str

    def label(self) -> str:
        return f"[video {Path(self.path).name} {self.bytes / 2**20:.1f} MB {self.mime.split('/')[-1]}]"


def is_video_path(value: Any) -> bool:
    """True if ``value`` is a str/PathLike naming an existing file with a video extension."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    try:
        text = os.fspath(value)
        if not isinstance(text, str) or "\n" in text or len(text) > 4096:
            return False
        p = Path(text).expanduser()
        return p.suffix.lower() in VIDEO_MIME_TYPES and p.is_file()
    except (OSError, ValueError, TypeError):
        return False


def inline_video_limit(max_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> int:
    """The largest video file that can go inline as base64 within a 100 MB request body."""
    return min(int(max_bytes), (_BODY_LIMIT - _HEADROOM) * 3 // 4)


def video_part(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES) -> dict[str, Any]:
    """A ``{"type": "video_url", ...}`` part embedding the file at ``path`` as a data URL."""
    return video_part_with_info(path, max_bytes=max_bytes)[0]


def video_part_with_info(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES
) -> tuple[dict[str, Any], VideoInfo]:
    """Like :func:`video_part`, also returning the :class:`VideoInfo` of what was sent."""
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise ContextError(f"a video must be given as a file path, not {type(path).__name__}") from None
    mime = VIDEO_MIME_TYPES.get(p.suffix.lower())
    if mime is None:
        kinds = ", ".join(sorted({s.lstrip(".") for s in VIDEO_MIME_TYPES}))
        raise ContextError(f"video file '{p}' has an unsupported extension; Kimi accepts {kinds}")
    try:
        if not p.is_file():
            where = "is not a file" if p.exists() else "not found"
            raise ContextError(f"video file '{p}' {where}; check the path (working directory: {Path.cwd()})")
        size = p.stat().st_size
        limit = inline_video_limit(max_bytes)
        if size > limit:
            raise ContextError(
                f"video file '{p}' is {size / 2**20:.1f} MB; at most {limit / 2**20:.0f} MB can be "
                "sent (the whole request must stay under 100 MB). Attach a shorter or smaller clip, "
                "e.g. `ffmpeg -i in.mp4 -t 30 -vf scale=-2:720 clip.mp4`"
            )
        if size == 0:
            raise ContextError(f"video file '{p}' is empty")
        data = p.read_bytes()
    except OSError as exc:
        raise ContextError(f"video file '{p}' could not be read: {exc.strerror or exc}") from None
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "video_url", "video_url": {"url": url}}, VideoInfo(mime, len(data), str(p))
