"""5. Media through the Files API: a 50 MB video named twice, and the memory it takes to send.

The simulator runs in its own process (``common.simulator_process``), so its copy of the
upload never counts against the client. A 50 MB video file (an mp4 header and zeros; the
simulator does not decode video) is named in a prompt twice by the same session:

* "second reference": the wall time of building and sending the second prompt (the file
  is recognised by content hash, memoised by path, size and mtime: no upload) against the
  first (hash, upload, chat). The target is no upload at all for the second; the ratio shows
  what it saves.
* "peak memory": ``tracemalloc``'s peak while a fresh session builds and sends the first
  prompt (hashing in 1 MiB blocks, the multipart upload streamed from disk in 64 KiB
  blocks, then a chat request that carries ``ms://<id>``), against the file's size; the
  target is under 2x. For contrast, the same peak for sending the video inline as base64
  (what providers without a Files API get, up to ~73 MB) is reported as information.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from .common import API_KEY, Log, Result, reply_rule, simulator_process

TARGET_MEMORY = 2.0
TARGET_SECOND = 0.25


def _video(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42")
        block = bytes(1024 * 1024)
        left = size - 12
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)
    return path


def run(quick: bool, log: Log) -> list[Result]:
    from kimi_jupyter.client import KimiClient
    from kimi_jupyter.context import build_content
    from kimi_jupyter.context.media import MediaSink, SessionUploads
    from kimi_jupyter.settings import resolve_settings

    size = (5 if quick else 50) * 1024 * 1024
    label = f"{size // 2**20} MB"
    with tempfile.TemporaryDirectory(prefix="kimi-bench-media-") as tmp, \
            simulator_process([reply_rule(["seen."])]) as base_url:
        clip = _video(Path(tmp) / "clip.mp4", size)
        settings = resolve_settings(explicit={"api_key": API_KEY, "base_url": base_url, "provider": "moonshot",
                                              "model": "kimi-k2.5", "thinking": False,
                                              "upload_threshold": 1024 * 1024}, environ={})
        client = KimiClient(settings)

        def send(uploads: SessionUploads) -> str:
            sink = MediaSink(settings, uploads, progress=None)
            parts = build_content("What happens in {clip}?", {"clip": str(clip)}, media=sink)
            response = client.chat([{"role": "user", "content": parts}])
            if response.error:
                raise RuntimeError(response.error)
            return next(str(p["video_url"]["url"]) for p in parts if p.get("type") == "video_url")

        log(f"media: {label} video, first and second reference")
        uploads = SessionUploads()
        t0 = time.perf_counter()
        first_url = send(uploads)
        first = time.perf_counter() - t0
        sent_after_first = uploads.uploads_sent
        t0 = time.perf_counter()
        second_url = send(uploads)
        second = time.perf_counter() - t0
        extra_uploads = uploads.uploads_sent - sent_after_first
        uploads.close()
        if not first_url.startswith("ms://") or second_url != first_url:
            raise RuntimeError("the video was not sent as one uploaded file")

        log("media: peak memory of sending through the Files API")
        fresh = SessionUploads()
        tracemalloc.start()
        try:
            send(fresh)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            fresh.close()

        log("media: peak memory of sending inline (information)")
        inline = resolve_settings(explicit={"api_key": API_KEY, "base_url": base_url, "provider": "moonshot",
                                            "model": "kimi-k2.5", "thinking": False,
                                            "upload_threshold": 10 * size}, environ={})
        inline_client = KimiClient(inline)
        tracemalloc.start()
        try:
            parts = build_content("{clip}", {"clip": str(clip)}, media=MediaSink(inline, SessionUploads(), None))
            inline_client.chat([{"role": "user", "content": parts}])
            del parts
            _, inline_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        inline_client.close()
        client.close()

    mb = 2**20
    return [
        Result(f"video {label}: second reference vs first", second * 1000, first * 1000, "ms",
               baseline_name="first: hash + upload + chat", target=f"no upload, <= {TARGET_SECOND}x",
               passed=extra_uploads == 0 and second <= TARGET_SECOND * first,
               details={"extra_uploads": extra_uploads, "first_s": first, "second_s": second}),
        Result(f"video {label}: peak memory sending via Files API", peak / mb, size / mb, "MB",
               baseline_name="file size", target=f"< {TARGET_MEMORY}x the file",
               passed=peak < TARGET_MEMORY * size, details={"peak_bytes": peak, "file_bytes": size}),
        Result(f"video {label}: peak memory sending inline (base64)", inline_peak / mb, size / mb, "MB",
               baseline_name="file size", target="(info)", details={"peak_bytes": inline_peak}),
    ]
