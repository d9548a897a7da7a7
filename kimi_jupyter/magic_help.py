"""``%kimi help``, written from the magics' own argument parsers, so it cannot drift.

Every option of the ``%%kimi`` parser and every sub-command of the ``%kimi`` parser (with
its arguments) is listed with its ``help=`` text: an option added to a parser is in the
help from then on. Only what is not an option (the ``{name}`` references of a cell,
``_kimi``, ``%config``, where the key goes) is written here by hand.

argparse has no public way to list a parser's arguments; ``_actions`` is the list every
help formatter (argparse's own included) reads, and it is only read here.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable

__all__ = ["LineCommands", "help_text", "option_strings"]

WIDTH = 100
LEFT = 30  # the first column; longer entries put their help on the next line

CELL_NOTES = """\
In the cell:
  {name}                      insert a variable (DataFrame summary, figure/image, video path, text,
                              document path: pdf/docx/xlsx/pptx/txt/md as a system message)
  {In[3]} {Out[3]}            insert an earlier cell's source / output;  {{ }} literal braces
The cells make one conversation; in JupyterLab and Notebook 7, running a cell again replaces
its exchange where it stood, and deleting the cell removes it (%kimi history shows it)."""

FOOTER = """\
_kimi                         the last Response (.text, .reasoning, .usage, .tool_steps, .code_blocks)
%config Kimi.model = "kimi-k2.5"   (see %kimi config for every setting and where it came from)
Key: MOONSHOT_API_KEY in the environment or a .env file next to the notebook."""


class LineCommands:
    """The ``%kimi COMMAND`` parser: one sub-parser a command, each with its help."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser(prog="%kimi", add_help=False)
        self._commands = self.parser.add_subparsers(dest="command", metavar="COMMAND")
        self.helps: dict[str, str] = {}
        self.parsers: dict[str, argparse.ArgumentParser] = {}

    def add(self, name: str, help: str, parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
        """A new sub-command ``name``; add its arguments to the parser this returns (or pass
        the command's own ``parser``, the one its handler parses with).

        ``help`` is shown as written (its arguments' ``help=`` texts as argparse shows them:
        ``%%`` for a literal ``%``)."""
        sub = parser or self._commands.add_parser(name, add_help=False, prog=f"%kimi {name}")
        self.helps[name] = help
        self.parsers[name] = sub
        return sub

    @property
    def names(self) -> list[str]:
        return list(self.parsers)


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` (``-m``, ``--model``, ...)."""
    return [name for action in _actions(parser) for name in action.option_strings]


def _metavar(action: argparse.Action) -> str:
    if action.metavar:
        return str(action.metavar)
    if action.choices:
        return "|".join(str(c) for c in action.choices)
    return action.dest.upper()


def _option(action: argparse.Action) -> str:
    """``-m, --model MODEL``; a flag alone (``--plot``); a positional as its metavar."""
    if not action.option_strings:
        return _metavar(action)
    names = ", ".join(action.option_strings)
    return names if action.nargs == 0 else f"{names} {_metavar(action)}"


def _usage(action: argparse.Action) -> str:
    """How an argument reads in a command line: ``PATH``, ``[info|clear]``, ``[--cell-id ID]``."""
    if action.option_strings:
        name = max(action.option_strings, key=len)
        text = name if action.nargs == 0 else f"{name} {_metavar(action)}"
        return text if action.required else f"[{text}]"
    optional = action.nargs in ("?", "*")
    return f"[{_metavar(action)}]" if optional else _metavar(action)


def _help(action: argparse.Action) -> str:
    """An argument's help as argparse shows it (``%%`` is a literal %, ``%(default)s`` expands)."""
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    try:
        text = text % {**vars(action), "prog": "%kimi"}
    except (KeyError, TypeError, ValueError):
        text = text.replace("%%", "%")
    return " ".join(text.split())


def _row(left: str, help: str, indent: str = "  ") -> list[str]:
    first = f"{indent}{left}"
    body_indent = " " * LEFT
    if not help:
        return [first]
    wrapped = textwrap.wrap(help, width=WIDTH - LEFT) or [""]
    if len(first) < LEFT - 1:
        lines = [first.ljust(LEFT) + wrapped[0]]
        rest = wrapped[1:]
    else:
        lines = [first]
        rest = wrapped
    return lines + [body_indent + line for line in rest]


def _options(actions: Iterable[argparse.Action]) -> list[str]:
    lines: list[str] = []
    for action in actions:
        lines += _row(_option(action), _help(action))
    return lines


def help_text(cell: argparse.ArgumentParser, line: LineCommands, title: str) -> str:
    """The whole ``%kimi help``: ``title``, the cell magic's options, the line commands."""
    out = [title, "", "%%kimi [options]: the cell is the prompt; the answer streams below it"]
    out += _options(_actions(cell))
    out += ["", CELL_NOTES, "", "%kimi COMMAND:"]
    for name, sub in line.parsers.items():
        arguments = " ".join(_usage(a) for a in _actions(sub))
        out += _row(f"{name} {arguments}".rstrip(), " ".join(line.helps[name].split()))
        for action in _actions(sub):
            if action.option_strings and _help(action):
                out += _row(_option(action), _help(action), indent="    ")
    out += ["", FOOTER]
    return "\n".join(out)
