"""Approval rules without a kernel: auto, the choice of channel, the terminal prompt."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from kimi_jupyter.agent import approval, ui_poll
from kimi_jupyter.agent.approval import Decision, choose_approver, pick_channel


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _FakeKernel:
    """Just enough of an ipykernel for the channel rule; it has no shell queue to pump."""

    session = object()

    def __init__(self, allow_stdin: bool, metadata: dict[str, Any] | None = None) -> None:
        self._parent = {
            "header": {"msg_type": "execute_request"},
            "metadata": metadata or {},
            "content": {"allow_stdin": allow_stdin},
        }

    def get_parent(self, channel: str = "shell") -> dict[str, Any]:
        return self._parent


class _FakeShell:
    def __init__(self, kernel: _FakeKernel) -> None:
        self.kernel = kernel


def test_auto_approves_without_asking() -> None:
    decision = choose_approver(auto=True)("c1", "run_python", "import os; os.remove('x')")
    assert decision == Decision(True, "auto")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.approved = False  # type: ignore[misc]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        choose_approver(mode="buttons")
    with pytest.raises(ValueError, match="timeout"):
        choose_approver(timeout=0)


def test_importing_approval_does_not_import_ipywidgets() -> None:
    code = "import sys, kimi_jupyter.agent.approval; print('ipywidgets' in sys.modules, 'zmq' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_nothing_can_ask_outside_a_kernel_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # piped: not a person
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "y")
    approver = choose_approver(object())
    assert approver("c1", "run_python", "print(1)") == Decision(False, "no-ui")
    assert asked == []


@pytest.mark.parametrize(
    ("answer", "approved"), [("y", True), ("YES ", True), ("", False), ("n", False), ("yep", False)]
)
def test_terminal_prompt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], answer: str, approved: bool
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or answer)
    decision = choose_approver(object(), mode="widget")("c1", "run_python", "print('hi')\nx = 2")
    assert decision == Decision(approved, "stdin")
    assert prompts == ["Run this code? [y/N] "]
    shown = capsys.readouterr().out
    assert "run_python" in shown and "    print('hi')\n    x = 2" in shown


def test_terminal_prompt_eof_denies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def eof(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert choose_approver(object())("c1", "run_python", "1") == Decision(False, "stdin")


def test_terminal_prompt_interrupt_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal())

    def interrupted(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", interrupted)
    with pytest.raises(KeyboardInterrupt):
        choose_approver(object())("c1", "run_python", "1")


@pytest.mark.parametrize(
    ("allow_stdin", "metadata", "mode", "expected"),
    [
        (False, {"cellId": "a"}, "auto", "no-ui"),
        (False, {}, "widget", "no-ui"),
        (False, {}, "stdin", "no-ui"),
        (True, {}, "auto", "stdin"),
        (True, {"cellId": "a"}, "stdin", "stdin"),
        # a notebook UI, but this fake kernel has no shell queue to pump: stdin
        (True, {"cellId": "a"}, "auto", "stdin"),
        (True, {}, "widget", "stdin"),
    ],
)
def test_channel_rule(allow_stdin: bool, metadata: dict[str, Any], mode: str, expected: str) -> None:
    assert pick_channel(_FakeShell(_FakeKernel(allow_stdin, metadata)), mode) == expected


def test_channel_rule_picks_the_widget_when_the_queue_can_be_pumped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_poll, "can_pump", lambda kernel: True)
    assert pick_channel(_FakeShell(_FakeKernel(True, {"cellId": "a"})), "auto") == "widget"
    assert pick_channel(_FakeShell(_FakeKernel(True, {})), "widget") == "widget"
    assert pick_channel(_FakeShell(_FakeKernel(True, {})), "auto") == "stdin"
    assert pick_channel(_FakeShell(_FakeKernel(False, {"cellId": "a"})), "widget") == "no-ui"


def test_kernel_without_stdin_denies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_poll, "can_pump", lambda kernel: True)
    approver = choose_approver(_FakeShell(_FakeKernel(False, {"cellId": "a"})), mode="widget")
    assert approver("c1", "run_python", "1") == Decision(False, "no-ui")


def test_no_shell_queue_means_no_pump() -> None:
    assert ui_poll.find_shell_channel(None) is None
    assert ui_poll.find_shell_channel(_FakeKernel(True)) is None
    assert not ui_poll.can_pump(_FakeKernel(True))
    with pytest.raises(ui_poll.PumpUnavailable):
        ui_poll.ShellPump.open(_FakeKernel(True))


def test_sigint_is_deferred_while_a_message_is_handled() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        steps = []
        with pytest.raises(KeyboardInterrupt), ui_poll._DeferSigint():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("still running")
        assert steps == ["still running"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_record_and_labels() -> None:
    assert approval.APPROVE_LABEL == "Run it" and approval.DENY_LABEL == "Don't run"
    assert approval._indent("a\nb") == "    a\n    b"
