from kimi_jupyter.conversation import Conversation, estimate_message_tokens
from kimi_jupyter.events import ReasoningDelta, TextDelta, ToolCallRequested
from kimi_jupyter.response import Response

IMG = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400_000}}


def response(text="", reasoning="", calls=()):
    r = Response()
    r.feed(ReasoningDelta(reasoning)) if reasoning else None
    r.feed(TextDelta(text)) if text else None
    for c in calls:
        r.feed(c)
    return r


def test_tool_call_turn_keeps_reasoning_byte_for_byte():
    conv = Conversation()
    conv.add_user("list vars")
    reasoning = "  I should call list_variables.\n"
    conv.add_assistant(response("", reasoning, [ToolCallRequested("functions.list_variables:0", "list_variables", "{}")]))
    conv.add_tool_result("functions.list_variables:0", "list_variables", "df: DataFrame")
    msg = conv.messages[1]
    assert msg["reasoning_content"] == reasoning
    assert msg["tool_calls"][0]["id"] == "functions.list_variables:0"
    assert conv.messages[2] == {"role": "tool", "tool_call_id": "functions.list_variables:0", "name": "list_variables", "content": "df: DataFrame"}


def test_plain_answers_do_not_store_reasoning():
    conv = Conversation()
    conv.add_user("hi")
    conv.add_assistant(response("hello", "thinking..."))
    assert "reasoning_content" not in conv.messages[1]


def test_trimming_ages_out_images_before_dropping_turns():
    conv = Conversation()
    conv.add_user([{"type": "text", "text": "look"}, IMG])
    conv.add_assistant(response("a chart"))
    conv.add_user("and now?")
    conv.add_assistant(response("fine"))
    conv.add_user("latest")
    full = sum(estimate_message_tokens(m) for m in conv.messages)
    trimmed = conv.for_request(budget_tokens=full - 100)
    assert len(trimmed) == len(conv.messages)
    assert trimmed[0]["content"][1]["type"] == "text" and "image removed" in trimmed[0]["content"][1]["text"]
    assert conv.messages[0]["content"][1] is IMG  # the stored history is untouched


def test_trimming_drops_oldest_exchanges_but_never_the_latest():
    conv = Conversation()
    for _ in range(20):
        conv.add_user("question " + "x" * 400)
        conv.add_assistant(response("answer " + "y" * 400))
    trimmed = conv.for_request(budget_tokens=500, system="be brief")
    assert trimmed[0] == {"role": "system", "content": "be brief"}
    assert trimmed[-1]["content"].startswith("answer")
    assert trimmed[1]["role"] == "user"  # exchanges are dropped whole
    assert len(trimmed) < 41


def test_history_text_shows_placeholders():
    conv = Conversation()
    conv.add_user([{"type": "text", "text": "look"}, IMG])
    conv.add_assistant(response("ok", "r", [ToolCallRequested("c1", "run_python", "{}")]))
    text = conv.history_text()
    assert "[image]" in text and "base64" not in text and "[calls: run_python]" in text
