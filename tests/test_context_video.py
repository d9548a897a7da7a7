"""Video files to ``video_url`` parts, with the size limit that keeps requests under 100 MB."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kimi_jupyter.context import ContextError, is_video_path, video_part, video_part_with_info

FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256))


@pytest.mark.parametrize(
    ("suffix", "mime"),
    [
        (".mp4", "video/mp4"),
        (".MOV", "video/quicktime"),
        (".webm", "video/webm"),
        (".avi", "video/avi"),
        (".mpeg", "video/mpeg"),
        (".mpg", "video/mpg"),
        (".flv", "video/x-flv"),
        (".wmv", "video/wmv"),
        (".3gp", "video/3gpp"),
    ],
)
def test_mime_by_extension(tmp_path: Path, suffix: str, mime: str):
    path = tmp_path / f"clip{suffix}"
    path.write_bytes(FAKE_MP4)
    part, info = video_part_with_info(path)
    assert part["type"] == "video_url"
    url = part["video_url"]["url"]
    assert url.startswith(f"data:{mime};base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == FAKE_MP4
    assert info.mime == mime and info.bytes == len(FAKE_MP4)
    assert is_video_path(path) and is_video_path(str(path))


def test_oversize_video_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "long.mp4"
    with path.open("wb") as f:
        f.truncate(60 * 1024 * 1024)  # sparse: costs no disk or time
    with pytest.raises(ContextError, match=r"60\.0 MB.*shorter"):
        video_part(path)
    small = tmp_path / "small.mp4"
    small.write_bytes(FAKE_MP4)
    with pytest.raises(ContextError, match="shorter or smaller clip"):
        video_part(small, max_bytes=100)
    # Even a generous caller limit cannot exceed what fits in a 100 MB body after base64.
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as f:
        f.truncate(80 * 1024 * 1024)
    with pytest.raises(ContextError, match="100 MB"):
        video_part(huge, max_bytes=10**12)


def test_missing_empty_and_unsupported(tmp_path: Path):
    with pytest.raises(ContextError, match=r"nope\.mp4' not found"):
        video_part(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(ContextError, match="empty"):
        video_part(empty)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(ContextError, match="unsupported extension"):
        video_part(other)
    assert not is_video_path(other) and not is_video_path(tmp_path / "nope.mp4")
    assert not is_video_path(42) and not is_video_path("line\nbreak.mp4")
