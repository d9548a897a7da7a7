"""Issue 15: redaction, key validation, and bounded context building.

* `kimi_jupyter.secrets.redact` masks the key (and cut pieces of it) in any shape, and
  returns the same object when there is nothing to mask;
* a key that cannot go in a header (non-ASCII, whitespace, line break) is refused with one
  message that does not echo it, whatever path set it, before any connection is made;
* the server's error body is redacted before it is cut;
* a request over the 100 MB body limit, or far over the context window, is refused locally
  before its body is built (and before the pre-flight estimate uploads it);
* ``repr`` of a huge ``bytes`` is sliced first; a slow ``__repr__`` is bounded in time.
"""

from __future__ import annotations

import time
import tracemalloc

import httpx
import pytest

from kimi_jupyter.client import KimiClient
from kimi_jupyter.client.size import BODY_LIMIT, check_request_size
from kimi_jupyter.context._repr import REPR_SECONDS, bounded_repr, safe_repr
from kimi_jupyter.errors import CellFailed, ConfigError, RequestTooLargeError, error_from_response
from kimi_jupyter.events import Failed
from kimi_jupyter.secrets import redact, secrets_of
from kimi_jupyter.settings import Secret, Settings, resolve_settings
from kimi_jupyter.testing import Reply

pytestmark = pytest.mark.timeout(120, method="thread")  # SIGALRM stays free for the repr bound

KEY = "sk-bounds-0123456789abcdefghijklmnop"


# -- redaction ----------------------------------------------------------------------------------

def test_redact_masks_every_shape_and_copies_only_when_needed():
    messages = [{"role": "user", "content": [{"type": "text", "text": f"key={KEY}!"},
                                             {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "tool", "content": ("x", f"{KEY}")}, {KEY: b"raw " + KEY.encode()}]
    out = redact(messages, [KEY])
    assert out[0]["content"][0]["text"] == "key=***!" and out[1]["content"] == ("x", "***")
    assert out[2] == {"***": b"raw ***"}
    assert out[0]["content"][1] is messages[0]["content"][1]  # untouched parts are shared
    assert KEY in messages[0]["content"][0]["text"]  # the input is never changed in place
    clean = [{"role": "user", "content": "nothing here " * 1000}]
    assert redact(clean, [KEY]) is clean and redact(clean, ()) is clean


def test_a_cut_piece_of_the_key_is_masked_too():
    for cut in (12, 20, len(KEY) - 1):
        text = "value: " + KEY[:cut] + "… [truncated]"
        assert redact(text, [KEY]) == "value: ***… [truncated]"
    assert redact("sk-boun", [KEY]) == "sk-boun"  # under 8 characters of it (secrets.PIECE): not masked


def test_secrets_of_covers_the_configured_and_the_environment_keys():
    s = resolve_settings(explicit={"api_key": KEY}, environ={})
    other = "sk-other-abcdefghijklmnopqrstuvwxyz"
    assert set(secrets_of(s, environ={"KIMI_API_KEY": other, "MOONSHOT_API_KEY": "short"})) == {other, KEY}
    assert secrets_of(Settings(), environ={}) == ()


def test_the_error_body_is_redacted_before_it_is_cut():
    body = '{"error": {"type": "invalid_request_error", "message": "' + "x" * 280 + " " + KEY + '"}}'
    message = str(error_from_response(400, body, secret=(KEY,)))
    assert KEY[:10] not in message and KEY[-10:] not in message and "***" in message
    raw = "y" * 295 + KEY + "z" * 100  # not JSON: the plain body is shown, cut
    message = str(error_from_response(502, raw, secret=KEY))
    assert KEY[:10] not in message and KEY[-6:] not in message


def test_sidebar_attachments_and_tool_output_are_redacted(ip, kimi_sim_env):
    import json

    from kimi_jupyter.agent.tools import run_tool
    from kimi_jupyter.context import compose, frontend_parts

    settings = resolve_settings(explicit={"api_key": KEY}, environ={})
    ip.user_ns["token"] = KEY
    attached = frontend_parts([{"kind": "cell", "source": f"key = '{KEY}'", "outputs": KEY}], settings)
    parts = compose("and {token}?", ip.user_ns, before=attached, frame_budget=settings.frame_budget,
                    image_max_size=settings.image_max_size, secrets=secrets_of(settings))
    assert KEY[:12] not in json.dumps(parts) and json.dumps(parts).count("***") == 3
    result = run_tool(ip, "run_python", json.dumps({"code": "print('the key is', token)"}), secrets=secrets_of(settings))
    assert result.text == "stdout:\nthe key is ***\n"
    hidden = run_tool(ip, "get_variable", json.dumps({"name": "_ih"}), secrets=secrets_of(settings))
    assert hidden.error == "unknown variable"


# -- key validation -----------------------------------------------------------------------------

BAD_KEYS = {"non-ASCII": KEY[:10] + "é" + KEY[11:], "newline": KEY[:10] + "\n" + KEY[10:],
            "space": KEY[:10] + " " + KEY[10:], "tab": KEY[:10] + "\t" + KEY[10:], "control": KEY[:10] + "\x07"}


@pytest.mark.parametrize("name", BAD_KEYS)
def test_a_bad_key_is_refused_without_echoing_it(name):
    key = BAD_KEYS[name]
    paths = [
        lambda: resolve_settings(config={"api_key": key}, environ={}),
        lambda: resolve_settings(environ={"MOONSHOT_API_KEY": key}),
        lambda: Settings(api_key=Secret(key)).require_key(),
    ]
    for path in paths:
        with pytest.raises(ConfigError) as caught:
            path()
        text = f"{caught.value} {caught.value!r}"
        assert "The API key contains" in text and "Nothing was sent" in text
        assert KEY[:10] not in text and KEY[11:] not in text


def test_a_bad_key_never_reaches_the_wire():
    sent: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    settings = Settings(api_key=Secret(BAD_KEYS["non-ASCII"]), base_url="https://api.moonshot.cn/v1", model="m")
    events = list(KimiClient(settings, http=http).stream_chat([{"role": "user", "content": "hi"}]))
    assert sent == [] and isinstance(events[-1], Failed) and events[-1].kind == "ConfigError"


# -- request size -------------------------------------------------------------------------------

def test_five_big_videos_are_refused_before_the_body_is_built():
    video = "data:video/mp4;base64," + "A" * 49_000_000  # one string, referenced five times
    content = [{"type": "text", "text": "compare these"}] + [{"type": "video_url", "video_url": {"url": video}}] * 5
    messages = [{"role": "user", "content": content}]
    settings = resolve_settings(explicit={"api_key": KEY}, environ={})
    problem = check_request_size(messages, settings)
    assert problem and problem.startswith("Refused: this request would be about 245.0 MB, over the 100.0 MB")
    assert "a video in user message 1 (inline): 49.0 MB" in problem and "nothing was sent" in problem

    sent: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)))
    tracemalloc.start()
    events = list(KimiClient(settings, http=http).stream_chat(messages))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sent == [] and events[-1].kind == RequestTooLargeError.__name__
    assert peak < 10 * 1024 * 1024  # nothing was encoded


def test_a_prompt_far_over_the_context_window_is_refused_locally():
    settings = resolve_settings(explicit={"api_key": KEY}, environ={})
    huge = [{"role": "user", "content": "lorem ipsum " * 900_000}]  # 10.8 MB, ~2.7M tokens
    assert "far over the model's context window of 262,144 tokens" in check_request_size(huge, settings)
    fits = [{"role": "user", "content": "lorem ipsum " * 1000}]
    assert check_request_size(fits, settings) is None
    assert BODY_LIMIT == 100_000_000


def test_the_magic_refuses_a_10_mb_prompt_before_any_upload(ip, kimi_sim_env, capsys):
    ip.user_ns["big_text"] = "lorem ipsum " * 900_000
    kimi_sim_env.queue(Reply(text="never"))
    with pytest.raises(CellFailed):  # the refusal fails the cell, with its one-line message
        ip.run_cell_magic("kimi", "--display text --new", "summarise {big_text}")
    out = capsys.readouterr().out
    assert "far over the model's context window" in out and "never" not in out
    assert kimi_sim_env.requests == []  # not even the pre-flight token count was asked for


# -- repr -----------------------------------------------------------------------------------------

def test_a_huge_bytes_object_is_sliced_before_it_is_formatted():
    blob = bytes(300 * 1024 * 1024)
    array = bytearray(10_000_000)
    tracemalloc.start()
    text = bounded_repr(blob, 4000)
    short = safe_repr(array, 200)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(text) <= 4000 and text.endswith("[bytes of 314,572,800 bytes, cut]")
    assert len(short) <= 200 and short.startswith("bytearray(b'\\x00")
    assert peak < 1024 * 1024  # only the slices were copied


class Sleepy:
    def __repr__(self) -> str:
        time.sleep(30)
        return "never"


def test_a_slow_repr_is_bounded_in_time():
    started = time.monotonic()
    assert bounded_repr(Sleepy()) == f"<{__name__}.Sleepy: repr took longer than {REPR_SECONDS:g} s; not shown>"
    assert "took longer" in bounded_repr([1, Sleepy()])
    assert time.monotonic() - started < 4 * REPR_SECONDS + 2


def test_a_slow_repr_in_a_prompt_does_not_block_the_cell(ip, kimi_sim_env, capsys):
    ip.user_ns["slow"] = Sleepy()
    kimi_sim_env.queue(Reply(text="answered"))
    started = time.monotonic()
    ip.run_cell_magic("kimi", "--display text --new", "what is {slow}?")
    assert time.monotonic() - started < REPR_SECONDS + 10 and "answered" in capsys.readouterr().out
    (request,) = kimi_sim_env.chat_requests
    assert "repr took longer than" in str(request.json["messages"][-1]["content"])


@pytest.fixture
def ip(kimi_sim_env):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    start_ipython()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kimi_jupyter")
    shell.config.pop("Kimi", None)
    yield shell
    shell.config.pop("Kimi", None)
