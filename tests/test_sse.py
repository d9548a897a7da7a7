from kimi_jupyter.client.sse import DONE, SSEDecoder, iter_sse


def test_comment_lines_and_keepalives_are_skipped():
    lines = [": OPENROUTER PROCESSING", "", "data: {\"a\": 1}", "", ":", "", "data: [DONE]", ""]
    assert list(iter_sse(lines)) == ['{"a": 1}', DONE]


def test_multiline_data_is_joined_and_fields_ignored():
    lines = ["event: message", "id: 7", "data: line one", "data: line two", "retry: 10", ""]
    assert list(iter_sse(lines)) == ["line one\nline two"]


def test_events_without_blank_separator_are_split():
    lines = ['data: {"a": 1}', 'data: {"b": 2}', ""]
    assert list(iter_sse(lines)) == ['{"a": 1}', '{"b": 2}']


def test_trailing_event_without_blank_line_is_flushed():
    assert list(iter_sse(["data: x"])) == ["x"]


def test_crlf_and_no_space_after_colon():
    decoder = SSEDecoder()
    assert decoder.feed("data:{}") is None
    assert decoder.feed("") == "{}"
    assert list(iter_sse(["data: a\r", "\r"])) == ["a"]
