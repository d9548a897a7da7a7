"""The conversation follows the cells, in a real kernel: a %%kimi cell run again (the
frontend's ``cellId`` in the execute_request's metadata, as JupyterLab sends it) replaces its
earlier exchange in place; a cell without an id is appended; a deleted cell takes its exchange
with it; %kimi history shows it."""

from __future__ import annotations

from typing import Any

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
        reply, _ = run(client, "%load_ext kimi_jupyter")
        assert reply["status"] == "ok"
        yield manager, client


@pytest.fixture(autouse=True)
def fresh(sim, kernel):
    sim.reset()
    run(kernel[1], "%kimi reset")


def in_cell(client: Any, code: str, cell_id: str | None, timeout: float = 60,
            deleted: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """Execute ``code`` as a notebook frontend does: with the cell's id in the metadata (and,
    as JupyterLab does, the ids of the cells deleted since the last execution)."""
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    metadata: dict[str, Any] = {"cellId": cell_id} if cell_id else {}
    if deleted is not None:
        metadata["deletedCells"] = deleted
    msg = client.session.msg("execute_request", content, metadata=metadata)
    client.shell_channel.send(msg)
    reply, messages = collect(client, msg["header"]["msg_id"], timeout)
    return reply, text_of(messages)


def ask_cell(sim: KimiSimulator, client: Any, prompt: str, answer: str, cell_id: str | None) -> list[dict]:
    """Run a %%kimi cell answered with ``answer``; returns the messages the request sent."""
    sim.queue(Reply(text=answer))
    reply, shown = in_cell(client, f"%%kimi --no-think --display text\n{prompt}", cell_id)
    assert reply["status"] == "ok", shown
    return sim.chat_requests[-1].messages


def history(client: Any) -> str:
    reply, shown = in_cell(client, "%kimi history", None)
    assert reply["status"] == "ok"
    return shown


def contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] in ("user", "assistant")]


def test_a_re_run_cell_replaces_its_exchange_in_place(sim, kernel):
    _, client = kernel
    ask_cell(sim, client, "Name a colour.", "Red.", "cell-a")
    ask_cell(sim, client, "And a fruit?", "Apple.", "cell-b")
    # The user edits cell A and runs it again: it is sent the history before it, not B's.
    sent = ask_cell(sim, client, "Name a warm colour.", "Orange.", "cell-a")
    assert contents(sent) == ["Name a warm colour."]
    shown = history(client)
    assert "Name a colour." not in shown and "Red." not in shown
    order = [shown.index(text) for text in ("Name a warm colour.", "Orange.", "And a fruit?", "Apple.")]
    assert order == sorted(order), shown  # A's new exchange where A's was, B's after it
    assert shown.count("user (In [") == 2, shown  # each cell's exchange names its cell
    # B, run again, sees the new A: the conversation is what running the cells top to bottom gives.
    sent = ask_cell(sim, client, "And a fruit?", "Pear.", "cell-b")
    assert contents(sent) == ["Name a warm colour.", "Orange.", "And a fruit?"]
    shown = history(client)
    assert "Apple." not in shown and shown.count("And a fruit?") == 1


def test_cells_without_an_id_are_appended(sim, kernel):
    _, client = kernel
    ask_cell(sim, client, "First?", "One.", None)
    sent = ask_cell(sim, client, "First?", "One again.", None)
    assert contents(sent) == ["First?", "One.", "First?"]
    shown = history(client)
    assert shown.count("First?") == 2 and "One." in shown and "One again." in shown
    assert "(In [" not in shown


def test_a_failed_re_run_keeps_the_cells_earlier_exchange(sim, kernel):
    from kimi_jupyter.testing import Fault

    _, client = kernel
    ask_cell(sim, client, "Name a colour.", "Red.", "cell-a")
    sim.fault(Fault.unauthorized())  # not retried: the turn fails before any answer
    reply, _ = in_cell(client, "%%kimi --no-think --display text\nName a warm colour.", "cell-a")
    assert reply["status"] == "error"
    shown = history(client)
    assert "Name a colour." in shown and "Red." in shown and "warm" not in shown


def test_export_follows_the_cells_too(sim, kernel, tmp_path):
    _, client = kernel
    ask_cell(sim, client, "Name a colour.", "Red.", "cell-a")
    ask_cell(sim, client, "Name a warm colour.", "Orange.", "cell-a")
    target = tmp_path / "chat.md"
    reply, shown = in_cell(client, f"%kimi export {target}", None)
    assert reply["status"] == "ok", shown
    text = target.read_text(encoding="utf-8")
    assert "Name a warm colour." in text and "Orange." in text and "Red." not in text


def test_a_deleted_cell_takes_its_exchange_with_it(sim, kernel, tmp_path):
    _, client = kernel
    ask_cell(sim, client, "Name a colour.", "Red.", "cell-a")
    ask_cell(sim, client, "And a fruit?", "Apple.", "cell-b")
    # The user deletes cell A, then runs any cell: JupyterLab sends A's id as deletedCells.
    reply, _ = in_cell(client, "x = 1", "cell-c", deleted=["cell-a", "never-a-kimi-cell"])
    assert reply["status"] == "ok"
    shown = history(client)
    assert "Name a colour." not in shown and "Red." not in shown and "And a fruit?" in shown
    sent = ask_cell(sim, client, "And a vegetable?", "Leek.", "cell-d")
    assert contents(sent) == ["And a fruit?", "Apple.", "And a vegetable?"]
    target = tmp_path / "chat.md"
    in_cell(client, f"%kimi export {target}", None)
    text = target.read_text(encoding="utf-8")
    assert "Red." not in text and "Apple." in text and "Leek." in text


def test_a_schema_retry_joins_its_cells_exchange(sim, kernel):
    _, client = kernel
    reply, _ = in_cell(client, "city = {'city': str}", None)
    assert reply["status"] == "ok"
    ask_cell(sim, client, "Name a fruit.", "Apple.", "cell-a")
    code = "%%kimi --no-think --display text -f json --schema city\nWhich city is the capital of France?"
    sim.queue(Reply(text="Paris, of course."), Reply(text='"city": "Paris"}'))  # the retry fixes it
    reply, shown = in_cell(client, code, "cell-b")
    assert reply["status"] == "ok", shown
    retry = sim.chat_requests[-1].messages
    assert "capital of France" in str(retry[-3]["content"]) and "Paris, of course." in retry[-2]["content"]
    # Run cell A again: B's exchange, retry included, stays after it, whole.
    ask_cell(sim, client, "Name a red fruit.", "Cherry.", "cell-a")
    sim.queue(Reply(text='"city": "Paris"}'))  # -f json prefills the "{" (partial mode)
    reply, shown = in_cell(client, code, "cell-b")  # re-run B: valid at once, replaces both turns
    assert reply["status"] == "ok", shown
    sent = sim.chat_requests[-1].messages
    assert contents(sent)[:2] == ["Name a red fruit.", "Cherry."]  # then B's prompt and the "{" prefill
    assert not any("Paris" in text for text in contents(sent))  # B's earlier exchange is not sent
    shown = history(client)
    assert "Paris, of course." not in shown and shown.count("capital of France") == 1, shown
