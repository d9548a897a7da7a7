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


# -- lines: only CRLF, LF and CR end a line ------------------------------------------------

import re  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kimi_jupyter.client.sse import LineSplitter  # noqa: E402


def iter_lines(texts):
    """The lines of pieces of text, as the clients split a body (`LineSplitter`)."""
    splitter = LineSplitter()
    for text in texts:
        yield from splitter.feed(text)
    yield from splitter.close()


def split_lines(text):
    return list(iter_lines([text]))


def test_lines_end_at_crlf_lf_and_cr_only():
    assert split_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]
    odd = 'data: {"t":"x\u2028y\u2029z\u0085w\x1c\x1d\x1e\x0b\x0c"}'
    assert split_lines(odd + "\n\n") == [odd, ""]


def test_a_crlf_split_between_two_reads_is_one_line_ending():
    assert list(iter_lines(["data: a\r", "\n\r", "\ndata: b\r"])) == ["data: a", "", "data: b"]


@given(st.text(alphabet="ab\r\n\u2028\u0085:", max_size=40), st.lists(st.integers(1, 7), max_size=12))
def test_any_chunking_gives_the_lines_of_the_whole(text, cuts):
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(text[at:at + cut])
        at += cut
    pieces.append(text[at:])
    expected = re.split(r"\r\n|\r|\n", text)
    if expected and expected[-1] == "":
        expected.pop()  # a last line ending ends the last line; it does not start another
    assert list(iter_lines(p for p in pieces if p)) == expected == split_lines(text)
