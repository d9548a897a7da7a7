"""The README tells the truth about the things it lists."""

from pathlib import Path

from kimi_jupyter.magics import HELP, KimiMagics, line_commands
from kimi_jupyter.settings import SETTING_HELP

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    for name in SETTING_HELP:
        assert f"| `{name}` |" in README, name


def test_every_magic_option_is_documented():
    for token in ("-m MODEL", "-f markdown|code|text|json"):
        assert token in README, token
    for action in KimiMagics.kimi.parser._actions:  # every option of the parser, as %kimi help lists them
        if action.option_strings:
            assert any(option in README for option in action.option_strings), action.option_strings
    for command in line_commands().names:
        assert command in HELP and (f"%kimi {command}" in README or f"| {command}" in README), command


def test_the_two_commands_exist():
    root = Path(__file__).resolve().parents[1]
    assert "bash .ci/lab" in README and "bash .ci/test" in README
    assert (root / ".ci" / "test").is_file()
    assert "bash .ci/test" in (root / ".ci" / "run").read_text()
