"""Issue 9: hostile input through ``%%kimi`` and ``ask()``.

Odd options and cell text (hypothesis), a 1 MB cell, broken and enormous images, strange
DataFrames and objects, an oversized video: each ends in one clear message (nothing is
sent) or in a sane, bounded summary that the simulator (which validates like Moonshot)
accepts. Nothing ends in a traceback from our code. The context layer's own unit tests
cover the conversions in detail; these tests go through the front doors.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython
from PIL import Image

from kimi_jupyter import ask
from kimi_jupyter.context import referenced_names
from kimi_jupyter.testing import Reply

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture
def ip(kimi_sim_env):
    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    shell.user_ns.pop("_kimi", None)
    from kimi_jupyter.context import get_plot_capture

    get_plot_capture(shell).clear()
    yield shell
    shell.config.pop("Kimi", None)


def run_kimi(ip: Any, capsys: Any, line: str, body: str) -> tuple[str, str]:
    """Run ``%%kimi`` like a kernel does; no exception may escape; returns (stdout, stderr)."""
    result = ip.run_cell(f"%%kimi {line}\n{body}")
    out = capsys.readouterr()
    assert result.error_before_exec is None and result.error_in_exec is None, (line, body, out.err[-2000:])
    assert "Traceback" not in out.out + out.err
    return out.out, out.err


def refused(sim: Any, err: str, *phrases: str) -> None:
    """One clear message on stderr, and no request at all."""
    assert err.strip(), "a refusal must say why"
    assert len(err.strip().splitlines()) <= 4
    for phrase in phrases:
        assert phrase in err, err
    assert sim.chat_requests == []


def sent_parts(sim: Any) -> list[dict[str, Any]]:
    (request,) = sim.chat_requests
    assert request.status == 200
    content = request.messages[-1]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


# -- the magic's options -----------------------------------------------------------------

OPTION_TOKENS = st.sampled_from([
    "-m", "--model", "kimi-k2.5", "'kimi k2'", '"', "'", "--think", "--no-think", "-f", "--format", "code", "json",
    "text", "markdown", "xml", "--new", "--max-tokens", "--max-tokens=0", "7", "-1", "1e9", "０１", "--system",
    "'Be brief.'", '"unterminated', "--cells", "0", "3", "--plot", "--cache", "--yes", "--web", "--", "-", "\\",
    "--bogus", "-zzz", "ünïcødé", "\u202e", "{x}", "$HOME", "`ls`", "%%kimi", "--display", "none", "text",
])
OPTION_LINES = st.lists(st.one_of(OPTION_TOKENS, st.text(max_size=6)), max_size=6).map(" ".join)


def test_random_option_lines_never_crash_and_send_only_when_valid(ip, kimi_sim_env, capsys):
    sim = kimi_sim_env
    sim.on(None, Reply(text="fine"))

    @FUZZ
    @given(OPTION_LINES)
    def check(line: str) -> None:
        if "\n" in line or "\r" in line or "--agent" in line:
            return
        sim.reset()
        sim.on(None, Reply(text="fine"))
        out, err = run_kimi(ip, capsys, f"--display text {line}", "Say fine.")
        if sim.chat_requests:  # accepted: a valid request that got an answer
            assert all(r.status in (200, 404) for r in sim.chat_requests)
            assert "fine" in out or "was not found" in out
        else:  # refused: one message that names the problem
            assert err.strip(), line

    check()


def test_unbalanced_quote_in_options_is_a_message_not_a_traceback(ip, kimi_sim_env, capsys):
    _, err = run_kimi(ip, capsys, '--system "unterminated', "hello")
    refused(kimi_sim_env, err, "No closing quotation", "Nothing was sent")


# -- interpolation -----------------------------------------------------------------------

BODY_PIECES = st.one_of(
    st.sampled_from(["{", "}", "{{", "}}", "{x}", "{{x}}", "{x!r}", "{x:>10}", "{0}", "{}", "{ x }", "{x.y}",
                     "{In[1]}", "{Out[0]}", "{__import__('os').system('echo PWNED')}", "{ünï}", "{𝕩}", "f'{x}'",
                     "\\{", "$x", "${x}", "%(x)s", "\u202e", "\x00", "🙂", "\n", "```", "{\"a\": {\"b\": 1}}"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
BODIES = st.lists(BODY_PIECES, min_size=1, max_size=12).map("".join)


def test_random_cells_interpolate_or_refuse_cleanly(ip, kimi_sim_env, capsys):
    sim = kimi_sim_env
    ip.user_ns["x"] = "VALUE-OF-X"

    @FUZZ
    @given(BODIES)
    def check(body: str) -> None:
        if not body:
            return  # IPython itself answers an empty %%kimi cell with a one-line UsageError
        sim.reset()
        sim.on(None, Reply(text="ok"))
        _, err = run_kimi(ip, capsys, "--display none", body)
        if not sim.chat_requests:
            assert err.strip(), repr(body)  # refused with a reason (undefined name, empty cell, ...)
            return
        text = "".join(p.get("text", "") for p in sent_parts(sim))
        assert "PWNED" not in err
        if not referenced_names(body) and "{In[" not in body and "{Out[" not in body:
            assert text == body.rstrip() or text.strip() == body.strip()  # sent exactly as typed

    check()


def test_a_one_megabyte_cell(ip, kimi_sim_env, capsys):
    import time

    sim = kimi_sim_env
    rng = random.Random(9)
    alphabet = "ab {}{{}}x\n€𝕩\u202e\"'`"
    body = "".join(rng.choice(alphabet) for _ in range(1_000_000))
    started = time.monotonic()
    _, err = run_kimi(ip, capsys, "--display none", body)
    assert time.monotonic() - started < 5
    refused(sim, err, "is not defined")  # random braces name undefined variables: refused before sending

    words = ("lorem ipsum dolor sit amet, 𝕩 {not a placeholder} {{braces}} " * 17_000)[:1_000_000]
    sim.queue(Reply(text="read it all"))
    started = time.monotonic()
    out, _ = run_kimi(ip, capsys, "--display text", words)
    assert time.monotonic() - started < 5
    assert "read it all" in out and "Pre-flight" in out
    (text,) = [p["text"] for p in sent_parts(sim)]
    assert len(text) > 950_000 and "{not a placeholder}" in text and "{braces}" in text

    sim.reset()
    big = "tokens " * 300_000  # over the simulated 262,144-token context window
    out, _ = run_kimi(ip, capsys, "--display text --new", big)
    assert "too long for the model's context window" in out and len(sim.chat_requests) == 1


# -- images ------------------------------------------------------------------------------


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height``, with almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (16, 16), "blue"), "JPEG"))
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buffer.getvalue()


BAD_IMAGES = {
    "truncated png": (lambda: (lambda png: png[: len(png) // 2])(encoded(Image.new("RGB", (64, 64), "red"), "PNG")),
                      "corrupt or truncated"),
    "png claiming 20000x20000": (lambda: png_claiming(20000, 20000), "too large"),
    "png claiming 9000x9000": (lambda: png_claiming(9000, 9000), "megapixel"),
    "gif header only": (lambda: b"GIF89a" + b"\x00" * 5, "could not be read"),
    "jpeg magic then junk": (lambda: b"\xff\xd8\xff\xe0" + b"\x00" * 40, "corrupt"),
    "empty PIL image": (lambda: Image.new("RGB", (0, 0)), "empty"),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images_are_refused_with_a_reason(ip, kimi_sim_env, capsys, case):
    make, phrase = BAD_IMAGES[case]
    ip.user_ns["img"] = make()
    _, err = run_kimi(ip, capsys, "--display none", "What is in {img}?")
    refused(kimi_sim_env, err, phrase)
    response = ask("What is in this?", ip.user_ns["img"], display="none")
    assert response.error and phrase in response.error and kimi_sim_env.chat_requests == []


def test_image_files_that_lie_are_refused(ip, kimi_sim_env, capsys, tmp_path):
    (tmp_path / "notes.png").write_text("this is not a picture")
    (tmp_path / "huge.png").write_bytes(png_claiming(20000, 20000))
    for name, phrase in (("notes.png", "not a PNG"), ("huge.png", "too large")):
        ip.user_ns["path"] = str(tmp_path / name)
        _, err = run_kimi(ip, capsys, "--display none", "Look at {path}")
        refused(kimi_sim_env, err, phrase, name)


GOOD_IMAGES = {
    "jpeg claiming 20000x20000": (lambda: jpeg_claiming(20000, 20000), "image/jpeg"),
    "CMYK jpeg": (lambda: encoded(Image.new("CMYK", (120, 80), (0, 255, 255, 0)), "JPEG"), "image/jpeg"),
    "CMYK PIL": (lambda: Image.new("CMYK", (50, 40)), "image/png"),
    "16-bit png": (lambda: encoded(Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)),
                                   "PNG"), "image/png"),
    "16-bit array": (lambda: np.linspace(0, 65535, 48 * 32 * 3).reshape(48, 32, 3).astype(np.uint16), "image/png"),
    "float PIL": (lambda: Image.new("F", (30, 30), 3.5), "image/png"),
    "animated gif": (animated_gif, "image/gif"),
    "huge thin png": (lambda: encoded(Image.new("L", (12000, 2), 128), "PNG"), "image/png"),
}


@pytest.mark.parametrize("case", list(GOOD_IMAGES))
def test_odd_images_are_sent_as_valid_bounded_images(ip, kimi_sim_env, capsys, case):
    make, mime = GOOD_IMAGES[case]
    ip.user_ns["img"] = make()
    kimi_sim_env.queue(Reply(text="I see it."))
    out, _ = run_kimi(ip, capsys, "--display text", "What is in {img}?")
    assert "I see it." in out
    (image,) = [p for p in sent_parts(kimi_sim_env) if p["type"] == "image_url"]
    header, data = image["image_url"]["url"].split(",", 1)
    assert header == f"data:{mime};base64"
    decoded = Image.open(io.BytesIO(base64.b64decode(data)))
    decoded.load()
    assert decoded.width <= 4096 and decoded.height <= 2160 and decoded.width * decoded.height > 0


# -- DataFrames and other objects --------------------------------------------------------


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __format__(self, spec: str) -> str:
        raise RuntimeError("no format")


class Unhashable(Unprintable):
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")


class PretendsToBeAFrame:
    """Claims to be a DataFrame and raises on every attribute."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return pd.DataFrame

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 5_000_000


def _recursive() -> list[Any]:
    items: list[Any] = []
    items.append(items)
    return items


OBJECTS = {
    "empty": lambda: pd.DataFrame(),
    "empty with columns": lambda: pd.DataFrame(columns=["a", "b"]),
    "10,000 columns": lambda: pd.DataFrame(np.zeros((3, 10_000))),
    "MultiIndex": lambda: pd.DataFrame(np.arange(16).reshape(4, 4),
                                       index=pd.MultiIndex.from_product([["a", "b"], [1, 2]]),
                                       columns=pd.MultiIndex.from_product([["x", "y"], ["p", "q"]])),
    "unprintable cells": lambda: pd.DataFrame({"a": [Unprintable(), Unhashable(), _recursive()], "b": [1, 2, 3]}),
    "unprintable column labels": lambda: pd.DataFrame([[1, 2]], columns=[Unprintable(), Unhashable()]),
    "unprintable series": lambda: pd.Series([Unprintable()] * 4),
    "mixed junk": lambda: pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None]), "c": pd.Categorical(["a", None]),
                                        "n": [np.inf, -np.inf], "s": ["\x00\u202e", "🙂" * 500]}),
    "unprintable object": Unprintable,
    "pretends to be a frame": PretendsToBeAFrame,
    "huge repr": HugeRepr,
    "recursive list": _recursive,
    "random bytes": lambda: random.Random(1).randbytes(50_000),
}


@pytest.mark.parametrize("case", list(OBJECTS))
def test_frames_and_objects_become_bounded_summaries(ip, kimi_sim_env, capsys, case):
    ip.user_ns["thing"] = OBJECTS[case]()
    ip.run_line_magic("config", "Kimi.frame_budget = 400")
    kimi_sim_env.queue(Reply(text="Summarised."))
    out, _ = run_kimi(ip, capsys, "--display text", "Describe {thing}.")
    assert "Summarised." in out
    (text,) = [p["text"] for p in sent_parts(kimi_sim_env)]
    assert text.startswith("Describe ") and text.endswith(".")
    assert 12 < len(text) < 8_000  # a summary, not a dump


def test_polars_oddities(ip, kimi_sim_env, capsys):
    import polars as pl

    ip.user_ns["pf"] = pl.DataFrame({f"c{i}": [None, 1] for i in range(3000)})
    ip.user_ns["lazy"] = pl.DataFrame({"a": [1, 2]}).lazy().with_columns(pl.col("a") * 2)
    ip.user_ns["nested"] = pl.DataFrame({"l": [[1, 2], None], "s": [{"x": 1}, {"x": None}]})
    kimi_sim_env.queue(Reply(text="ok"))
    out, _ = run_kimi(ip, capsys, "--display text", "{pf} {lazy} {nested}")
    assert "ok" in out
    (text,) = [p["text"] for p in sent_parts(kimi_sim_env)]
    assert "3,000 columns" in text and len(text) < 20_000


# -- video -------------------------------------------------------------------------------


def test_oversized_and_empty_videos_are_refused_before_reading(ip, kimi_sim_env, capsys, tmp_path):
    big = tmp_path / "holiday.mp4"
    with open(big, "wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: nothing is written, nothing must be read
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    for path, phrase in ((big, "MB can be sent"), (empty, "is empty")):
        ip.user_ns["clip"] = str(path)
        _, err = run_kimi(ip, capsys, "--display none", "What happens in {clip}?")
        refused(kimi_sim_env, err, phrase, path.name)
        response = ask("What happens here?", Path(path), display="none")
        assert response.error and phrase in response.error
        assert kimi_sim_env.chat_requests == []


def test_a_video_named_like_a_video_but_too_big_for_the_body(ip, kimi_sim_env, capsys, tmp_path):
    """Past the configured cap but under the hard cap, on a provider without a Files API to
    upload it: still refused, still nothing sent."""
    clip = tmp_path / "clip.mov"
    with open(clip, "wb") as handle:
        handle.truncate(51 * 1024 * 1024)
    ip.user_ns["clip"] = clip
    ip.run_line_magic("config", "Kimi.provider = 'openai'")
    _, err = run_kimi(ip, capsys, "--display none", "{clip}")
    refused(kimi_sim_env, err, "clip.mov", "shorter or smaller clip")


# -- options of ask() and %config --------------------------------------------------------

BAD_OPTIONS = [
    ({"max_tokens": "lots"}, "max_tokens"), ({"max_tokens": -5}, "max_tokens"), ({"max_tokens": 10**30}, "max_tokens"),
    ({"timeout_read": -1}, "timeout_read"), ({"timeout_read": float("nan")}, "timeout_read"),
    ({"max_retries": -1}, "max_retries"), ({"retry_backoff": -0.5}, "retry_backoff"),
    ({"thinking": "yes"}, "thinking"), ({"stream": "no"}, "stream"), ({"model": 123}, "model"),
    ({"system": ["a"]}, "system"), ({"base_url": "not a url"}, "base_url"), ({"base_url": "ftp://x/v1"}, "base_url"),
    ({"image_max_size": (0, 0)}, "image_max_size"), ({"image_max_size": "big"}, "image_max_size"),
    ({"frame_budget": 0}, "frame_budget"), ({"display": "hologram"}, "display"), ({"colour": "blue"}, "colour"),
    ({"provider": "nope"}, "nope"), ({"api_key": 12345}, "api_key"),
]


@pytest.mark.parametrize(("options", "name"), BAD_OPTIONS, ids=[n + str(i) for i, (_, n) in enumerate(BAD_OPTIONS)])
def test_invalid_ask_options_fail_clearly_and_send_nothing(kimi_sim_env, capsys, options, name):
    response = ask("hello", **{"display": "text", **options})
    out = capsys.readouterr()
    assert response.error and name in response.error and response.text == ""
    assert "Traceback" not in out.out + out.err and f"[failed: {response.error}]" in out.out
    assert kimi_sim_env.chat_requests == []


def test_invalid_config_values_are_one_message(ip, kimi_sim_env, capsys):
    ip.run_line_magic("config", "Kimi.timeout_read = -1.0")
    try:
        _, err = run_kimi(ip, capsys, "--display text", "hello")
        refused(kimi_sim_env, err, "timeout_read=-1.0", "%config")
        for line in ("config", "cache info", "models"):
            ip.run_line_magic("kimi", line)
            out = capsys.readouterr()
            assert "timeout_read" in out.err and "Traceback" not in out.out + out.err
    finally:
        ip.run_line_magic("config", "Kimi.timeout_read = 300.0")
