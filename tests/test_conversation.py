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


# -- exchanges keyed by cell (a re-run cell replaces its exchange in place) --------------------
def exchange(conv, key, prompt, answer, label=None):
    start = len(conv)
    conv.add_user(prompt)
    conv.add_assistant(response(answer))
    return conv.place(start, key, label)


def texts(conv):
    return [m["content"] for m in conv.messages]


def test_a_keyed_exchange_replaces_the_cells_earlier_one_where_it_stood():
    conv = Conversation()
    exchange(conv, "a", "A?", "a1")
    exchange(conv, "b", "B?", "b1")
    exchange(conv, None, "free", "f1")
    added = exchange(conv, "a", "A2?", "a2", "In [7]")
    assert [m["content"] for m in added] == ["A2?", "a2"]
    assert texts(conv) == ["A2?", "a2", "B?", "b1", "free", "f1"]
    assert conv.tokens == sum(estimate_message_tokens(m) for m in conv.messages)  # the numbers moved too
    assert "user (In [7]): A2?" in conv.history_text()
    exchange(conv, "b", "B2?", "b2")
    assert texts(conv) == ["A2?", "a2", "B2?", "b2", "free", "f1"]


def test_a_re_run_is_sent_the_history_before_its_cell():
    conv = Conversation()
    exchange(conv, "a", "A?", "a1")
    exchange(conv, "b", "B?", "b1")
    before_b, _, _ = conv.sized_request(10_000, before="b")
    assert [m["content"] for m in before_b] == ["A?", "a1"]
    before_a, _, _ = conv.sized_request(10_000, "Be brief.", before="a")
    assert before_a == [{"role": "system", "content": "Be brief."}]
    everything, _, _ = conv.sized_request(10_000, before="new-cell")
    assert len(everything) == 4


def test_an_exchange_that_added_nothing_leaves_the_cells_earlier_one():
    conv = Conversation()
    exchange(conv, "a", "A?", "a1")
    assert conv.place(len(conv), "a") == []
    assert texts(conv) == ["A?", "a1"]


def test_compaction_keeps_the_keys_with_their_messages():
    conv = Conversation()
    exchange(conv, "a", "A" * 4000, "a1")
    exchange(conv, "b", "B?", "b1")
    conv.compact(200)  # A's exchange is dropped
    assert texts(conv) == ["B?", "b1"]
    exchange(conv, "b", "B2?", "b2")
    assert texts(conv) == ["B2?", "b2"]
    exchange(conv, "a", "A again", "a2")  # A's exchange is gone: appended
    assert texts(conv) == ["B2?", "b2", "A again", "a2"]
    conv.clear()
    exchange(conv, "b", "B3?", "b3")
    assert texts(conv) == ["B3?", "b3"]


def test_a_deleted_cells_exchange_is_forgotten():
    conv = Conversation()
    exchange(conv, "a", "A?", "a1", "In [1]")
    exchange(conv, None, "free", "f1")
    exchange(conv, "b", "B?", "b1")
    assert conv.forget(["a", "unknown"]) == 2
    assert texts(conv) == ["free", "f1", "B?", "b1"]
    assert conv.forget(["a"]) == 0
    assert conv.tokens == sum(estimate_message_tokens(m) for m in conv.messages)
    exchange(conv, "a", "A again", "a2")  # a new exchange for that id is appended
    assert texts(conv)[-2:] == ["A again", "a2"]


def test_a_follow_up_in_the_same_cell_joins_its_exchange():
    conv = Conversation()
    exchange(conv, "a", "A?", "a1")
    exchange(conv, "b", "B?", "b1")
    # Cell A runs again (in place), then its schema retry follows up in the same cell.
    exchange(conv, "a", "A2?", "a2")
    through_a, _, _ = conv.sized_request(10_000, through="a")
    assert [m["content"] for m in through_a] == ["A2?", "a2"]
    start = len(conv)
    conv.add_user("not valid: again")
    conv.add_assistant(response("a3"))
    conv.place(start, "a", join=True)
    assert texts(conv) == ["A2?", "a2", "not valid: again", "a3", "B?", "b1"]
    exchange(conv, "a", "A4?", "a4")  # the next re-run replaces the whole exchange, retry included
    assert texts(conv) == ["A4?", "a4", "B?", "b1"]
