"""The demo's answer to "Fix with Kimi" / ``%kimi fix`` on an error no script knows.

A real model reads the failing cell and proposes a fix. The simulator cannot, so it does
the one thing it can do honestly: a deterministic, minimal change to *that* cell, derived
from what the fix prompt carries, or a plain "no fix" when it finds none. It never answers
with unrelated code (a proposal the user could Accept and run).

What it reads from the prompt (the layout ``kimi_jupyter.fix.build_fix_prompt`` writes):
the cell after ``Failing cell:`` (a fenced python block), the trimmed traceback after
``Error (...)`` (a fenced block), and the names the prompt mentions as defined: the
"existing names that look close" hints, the variables it summarises, the names the earlier
cells define, and the names the cell itself binds.

What it fixes: a misspelt name, the only mistake it can tell from the error alone.

* ``NameError: name 'x' is not defined``: ``x`` becomes Python's own suggestion (``Did you
  mean: 'y'?``) or else the closest defined name (``difflib``), or a builtin (``prnt``),
  everywhere the cell reads it;
* ``AttributeError ... Did you mean: 'y'?``: that attribute becomes ``y``;
* ``KeyError: 'x'`` where the cell indexes with the string ``'x'``: the closest column or
  key named in the prompt's variable summaries that the cell does not already use.

Everything else (a wrong type, a division by zero, a failing library call) gets an answer
without code saying so, and how to get a real fix: a key.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import io
import re
import tokenize

from .replies import Reply

__all__ = ["FIX_MARKER", "fix_reply", "is_fix_prompt", "minimal_fix"]

#: The instruction the fix prompt starts with (``kimi_jupyter.fix.INSTRUCTION``).
FIX_MARKER = "minimal fix for this failing notebook cell"
_CELL = re.compile(r"Failing cell:\n(?P<fence>`{3,})python\n(?P<body>.*?)\n(?P=fence)(?:\n|$)", re.S)
_ERROR = re.compile(r"\nError \([^\n]*\n(?P<fence>`{3,})\n(?P<body>.*?)\n(?P=fence)(?:\n|$)", re.S)
_CLOSE = re.compile(r"existing names that look close: ([^)\n]+)\)")
_VARIABLE = re.compile(r"^- ([A-Za-z_]\w*): ", re.M)
_EARLIER = re.compile(r"^In \[\d+\]:\n(?P<fence>`{3,})python\n(?P<body>.*?)\n(?P=fence)$", re.S | re.M)
_NAME_ERROR = re.compile(r"NameError: name '(?P<name>\w+)' is not defined(?:\. Did you mean: '(?P<hint>\w+)'\?)?")
_ATTRIBUTE_ERROR = re.compile(r"AttributeError: .*has no attribute '(?P<name>\w+)'\. Did you mean: '(?P<hint>\w+)'\?")
_KEY_ERROR = re.compile(r"KeyError: (?P<quote>['\"])(?P<name>[^'\"\n]{1,200})(?P=quote)")
NO_KEY_HINT = ("For real fixes, give Kimi a key: `export MOONSHOT_API_KEY=sk-...` (or a line "
               "`MOONSHOT_API_KEY=sk-...` in `notebooks/.env`), then start `.ci/lab` again.")


def is_fix_prompt(text: str) -> bool:
    return FIX_MARKER in text and _CELL.search(text) is not None


def _bound(source: str) -> set[str]:
    """Names a piece of code binds (assignments, defs, classes, imports, loop targets)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _defined_names(prompt: str, cell: str) -> list[str]:
    """The names the prompt shows to exist, most telling first (hints, then variables...)."""
    names: dict[str, None] = {}
    for found in _CLOSE.finditer(prompt):
        names.update(dict.fromkeys(n.strip() for n in found.group(1).split(",") if n.strip().isidentifier()))
    variables = prompt.split("\nVariables the cell uses:\n", 1)
    if len(variables) == 2:
        for found in _VARIABLE.finditer(variables[1].split("\n\n", 1)[0]):
            if "not defined" not in variables[1][found.end():found.end() + 12]:
                names.setdefault(found.group(1), None)
    for found in _EARLIER.finditer(prompt):
        names.update(dict.fromkeys(sorted(_bound(found.group("body")))))
    names.update(dict.fromkeys(sorted(_bound(cell))))
    return list(names)


def _rename(source: str, old: str, new: str, *, attribute: bool) -> str | None:
    """``source`` with the name (or, with ``attribute``, the ``.attribute``) ``old`` renamed.

    Tokens, not text: strings, comments and other names that contain ``old`` are left
    alone. None when the cell cannot be tokenized or does not use ``old`` that way."""
    lines = source.splitlines(keepends=True)
    spots: list[tuple[int, int, int]] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string != old:
            continue
        after_dot = i > 0 and tokens[i - 1].type == tokenize.OP and tokens[i - 1].string == "."
        if after_dot == attribute:
            spots.append((token.start[0] - 1, token.start[1], token.end[1]))
    if not spots:
        return None
    for row, start, end in reversed(spots):
        line = lines[row]
        lines[row] = line[:start] + new + line[end:]
    return "".join(lines)


def _replace_key(source: str, old: str, new: str) -> str | None:
    """The string literal ``'old'`` / ``"old"`` used as a key, replaced by ``new``."""
    pattern = re.compile(r"(?P<q>['\"])" + re.escape(old) + r"(?P=q)")
    if not pattern.search(source):
        return None
    return pattern.sub(lambda m: m.group("q") + new + m.group("q"), source)


def _summary_words(prompt: str) -> list[str]:
    """Column names and keys the variable summaries mention (candidates for a KeyError)."""
    section = prompt.split("\nVariables the cell uses:\n", 1)
    if len(section) != 2:
        return []
    text = section[1].split("\nEarlier cells that defined them:\n", 1)[0]
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
    return list(dict.fromkeys(words))


def minimal_fix(prompt: str) -> tuple[str, str] | None:
    """``(explanation, fixed cell)`` for a fix prompt, or None when no minimal fix is found."""
    cell_match = _CELL.search(prompt)
    error_match = _ERROR.search(prompt)
    if cell_match is None or error_match is None:
        return None
    cell, error = cell_match.group("body"), error_match.group("body")
    found = _NAME_ERROR.search(error)
    if found:
        name = found.group("name")
        defined = [n for n in _defined_names(prompt, cell) if n != name]
        builtin = [n for n in dir(builtins) if not n.startswith("_")]  # prnt -> print
        best = found.group("hint") or next(iter(
            difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
            or difflib.get_close_matches(name, builtin, n=1, cutoff=0.75)), None)
        fixed = _rename(cell, name, best, attribute=False) if best else None
        if fixed is not None and fixed != cell:
            what = "defined name" if best in defined or found.group("hint") else "builtin"
            return (f"There is no variable `{name}`; the closest {what} is `{best}`, so the cell "
                    f"uses `{best}` instead and stays otherwise as it was."), fixed
        return None
    found = _ATTRIBUTE_ERROR.search(error)
    if found:
        name, best = found.group("name"), found.group("hint")
        fixed = _rename(cell, name, best, attribute=True)
        if fixed is not None and fixed != cell:
            return (f"There is no attribute `{name}`; Python suggests `{best}`, so the cell uses "
                    f"`.{best}` instead."), fixed
        return None
    found = _KEY_ERROR.search(error)
    if found:
        name = found.group("name")
        used = set(re.findall(r"['\"]([^'\"\n]+)['\"]", cell))  # keys the cell already reads: not the typo
        candidates = [w for w in _summary_words(prompt) if w != name and w not in used]
        best = next(iter(difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)), None)
        fixed = _replace_key(cell, name, best) if best else None
        if fixed is not None and fixed != cell:
            return (f"There is no key `{name}`; the closest one in the data is `{best}`, so the cell "
                    f"uses `{best!r}` instead."), fixed
    return None


def _error_kind(prompt: str) -> str:
    found = _ERROR.search(prompt)
    last = found.group("body").strip().splitlines()[-1] if found and found.group("body").strip() else ""
    kind = last.split(":", 1)[0].strip()
    return kind if kind.isidentifier() else "error"


def fix_reply(prompt: str, banner: str, *, thinking: bool) -> Reply:
    """The demo's answer to a fix prompt: the minimal fix, or a plain "no fix"."""
    fix = minimal_fix(prompt)
    if fix is not None:
        explanation, code = fix
        longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, longest + 1)
        text = f"{banner} {explanation}\n\n{fence}python\n{code}\n{fence}"
        reasoning = "The demo simulator fixes misspelt names only; this one has a close match." if thinking else ""
        return Reply(text=text, reasoning=reasoning)
    kind = _error_kind(prompt)
    text = (f"{banner} I have no fix for this {kind}: the demo simulator can only correct a misspelt "
            f"name (a NameError, an AttributeError that Python suggests a name for, or a KeyError with "
            f"a close match), and it found none here. {NO_KEY_HINT}")
    return Reply(text=text, reasoning="No misspelt name to correct, so no code is proposed." if thinking else "")
