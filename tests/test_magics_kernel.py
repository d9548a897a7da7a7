"""%%kimi in a real kernel: the answer, set_next_input, interrupts, errors."""

from __future__ import annotations

import time

import pytest

from kimi_jupyter.testing import KimiSimulator, Reply

from .kernels import collect, run, running_kernel, text_of

KEY = "sk-test-simulator"


@pytest.fixture(scope="module")
def sim():
    with KimiSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kernel(sim, tmp_path_factory):
    env = {"KIMI_BASE_URL": sim.base_url, "MOONSHOT_API_KEY": KEY, "KIMI_PROVIDER": "moonshot"}
    with running_kernel(env, tmp_path_factory.mktemp("kernel")) as (manager, client):
        reply, _ = run(client, "%load_ext kimi_jupyter\nimport pandas as pd")
        assert reply["status"] == "ok"
        yield manager, client


@pytest.fixture(autouse=True)
def fresh(sim, kernel):
    sim.reset()
    run(kernel[1], "%kimi reset")


def test_answer_streams_into_the_cell_and_is_saved_static(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text="The **answer** is 42.", reasoning="Let me think."))
    reply, messages = run(client, "%%kimi --display markdown\nWhat is 6 x 7?")
    assert reply["status"] == "ok"
    final = [m for m in messages if m["msg_type"] == "update_display_data"][-1]["content"]["data"]
    assert "The **answer** is 42." in final["text/plain"]
    assert "<details" in final["text/html"] and "Let me think." in final["text/html"]
    reply, messages = run(client, "print(_kimi.text, '|', _kimi.reasoning)")
    assert "The **answer** is 42. | Let me think." in text_of(messages)


def test_format_code_sends_set_next_input_payload(sim, kernel):
    _, client = kernel
    sim.queue(Reply(text="x = 1 + 1\nprint(x)\n```"))  # continues the prefilled fence (partial mode)
    reply, _ = run(client, "%%kimi -f code --display none\nadd numbers")
    assert sim.chat_requests[-1].messages[-1] == {"role": "assistant", "content": "```python\n", "partial": True}
    (payload,) = [p for p in reply["payload"] if p["source"] == "set_next_input"]
    assert payload["text"] == "x = 1 + 1\nprint(x)" and payload["replace"] is False


def test_interrupt_ends_the_stream_within_a_second_and_keeps_the_partial_answer(sim, kernel):
    manager, client = kernel
    words = [f"word{i} " for i in range(400)]
    sim.queue(Reply(chunks=words, chunk_delay=0.05))  # a 20-second answer
    msg_id = client.execute("%%kimi --display text\nTell me a long story")
    time.sleep(1.5)
    started = time.monotonic()
    manager.interrupt_kernel()
    reply, messages = collect(client, msg_id, timeout=10)
    assert time.monotonic() - started < 1.5
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    shown = text_of(messages)
    assert "word0 word1" in shown and "Interrupted" in shown and "word399" not in shown
    # The conversation stays consistent: the partial answer is remembered, the next turn works.
    sim.queue(Reply(text="continuing"))
    reply, messages = run(client, "%%kimi --display text\ngo on")
    assert reply["status"] == "ok" and "continuing" in text_of(messages)
    roles = [m["role"] for m in sim.chat_requests[-1].json["messages"]]
    assert roles == ["user", "assistant", "user"]
    assert sim.chat_requests[-1].json["messages"][1]["content"].startswith("word0 word1")


def test_errors_are_one_line_without_traceback(sim, kernel):
    _, client = kernel
    from kimi_jupyter.testing import Fault

    sim.fault(Fault.model_not_found(model="kimi-nope"))
    reply, messages = run(client, "%%kimi -m kimi-nope --display text\nhello")
    shown = text_of(messages)
    assert reply["status"] == "ok"
    assert "%kimi models" in shown and "Traceback" not in shown
    reply, messages = run(client, "%%kimi --display text\nuse {undefined_thing}")
    shown = text_of(messages)
    assert "Name 'undefined_thing' is not defined" in shown and "Traceback" not in shown
