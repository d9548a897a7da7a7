"""The README tells the truth about the things it lists."""

from pathlib import Path

from kimi_jupyter.magics import HELP
from kimi_jupyter.settings import SETTING_HELP

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    for name in SETTING_HELP:
        assert f"| `{name}` |" in README, name


def test_every_magic_option_is_documented():
    for token in ("-m MODEL", "--think", "--no-think", "-f markdown|code|text|json", "--new", "--max-tokens",
                  "--system", "--cells", "--plot", "--agent", "--yes", "--web", "--cache", "--display"):
        assert token in README, token
    for command in ("reset", "history", "usage", "config", "models", "cache", "help"):
        assert command in HELP and command in README


def test_the_two_commands_exist():
    root = Path(__file__).resolve().parents[1]
    assert "bash .ci/lab" in README and "bash .ci/test" in README
    assert (root / ".ci" / "test").is_file()
    assert "bash .ci/test" in (root / ".ci" / "run").read_text()
