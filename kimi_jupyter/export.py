"""``%kimi export PATH``: a conversation as Markdown or as a notebook.

What goes in, per turn: the prompt, the answer, the reasoning (folded in ``<details>``),
the tool steps with their arguments and results, the edit proposals with their diff and
outcome, notices and errors, and the usage line. The format follows the file's extension:
``.md`` (or ``.markdown``) or ``.ipynb`` (one Markdown cell for each prompt and each answer).

Safety, because an export is opened later by other tools (GitHub, JupyterLab, a browser):

* The configured API key is replaced by ``[redacted]`` everywhere, whatever carried it
  (a prompt, a tool result that printed the environment, the model's answer).
* The key, and any cut piece of it, is redacted in every string of the conversation before
  anything is cut or formatted (a tool result is clipped to 4,000 characters afterwards).
* Model and tool text never becomes live HTML and never makes the viewer load anything:
  it is written back by the live view's policy (`kimi_jupyter.untrusted.safe_markdown`:
  markdown-it with HTML off, images as links, only http/https/mailto links); reasoning,
  tool text and diffs go into fenced blocks whose fence is longer than any backtick run
  inside, or into escaped ``<pre>``.
* The file is written atomically and never through a symlink (`kimi_jupyter.safe_write`);
  an existing file is refused unless ``--force``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from .transcript import Transcript, TurnRecord

__all__ = ["to_markdown", "to_notebook", "write_export", "safe_markdown", "redact", "secrets_to_hide",
           "sidebar_export"]

REDACTED = "[redacted]"
RESULT_CHARS = 4000
_INLINE_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with each secret, and each cut piece of one, replaced by ``[redacted]``."""
    from .secrets import redact_text

    return redact_text(text, secrets, REDACTED)


def _redacted(value: Any, secrets: list[str]) -> Any:
    """Every string in a transcript's record, redacted: done before anything is cut or formatted."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v, secrets) for v in value]
    return value


def _redacted_transcript(transcript: Transcript, secrets: list[str]) -> Transcript:
    import dataclasses

    if not secrets:
        return transcript
    turns = [dataclasses.replace(t, **{f.name: _redacted(getattr(t, f.name), secrets)
                                      for f in dataclasses.fields(t) if f.name in ("prompt", "response", "proposals")})
             for t in transcript.turns]
    return dataclasses.replace(transcript, turns=turns)


def _escape_line(line: str) -> str:
    """A short piece of text (a note, an error) as inert Markdown: the live view's policy."""
    from .untrusted import markdown_text

    return markdown_text(line)


_neutral = _escape_line


def safe_markdown(text: str) -> str:
    """Model Markdown written back by the live view's policy (`untrusted.safe_markdown`): no raw
    HTML, images as links, only http/https/mailto links, code kept."""
    from .untrusted import safe_markdown as policy

    return policy(text)


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _clip(text: str, limit: int = RESULT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters cut)"


def _arguments(step: dict[str, Any]) -> tuple[str, str]:
    """A tool call's arguments as (language, text): code as Python, the rest as JSON."""
    raw = str(step.get("arguments") or "")
    try:
        args = json.loads(raw or "{}")
    except ValueError:  # a step that waited for approval keeps the code itself
        return ("python" if step.get("name") in ("run_python", "run_cell") else ""), raw
    if isinstance(args, dict) and isinstance(args.get("code"), str):
        return "python", args["code"]
    if isinstance(args, dict) and isinstance(args.get("source"), str):
        rest = {k: v for k, v in args.items() if k != "source"}
        head = json.dumps(rest, ensure_ascii=False) + "\n" if rest else ""
        return "", head + args["source"]
    return "json", json.dumps(args, ensure_ascii=False, indent=1)


def _step_markdown(step: dict[str, Any]) -> str:
    state = str(step.get("state") or "")
    approved = step.get("approved")
    how = "" if approved is None else (" (approved)" if approved else " (denied)")
    lang, args = _arguments(step)
    lines = [f"- `{_neutral(str(step.get('name') or '?'))}`: {html.escape(state)}{how}"]
    if args.strip() and args.strip() != "{}":
        lines.append(_indent(_fence(args, lang)))
    result = step.get("result")
    if result:
        lines.append(_indent("Result:\n\n" + _fence(_clip(str(result)))))
    return "\n\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(("  " + line) if line else "" for line in text.split("\n"))


def _proposal_markdown(record: dict[str, Any]) -> str:
    status = str(record.get("status") or "")
    head = f"- {html.escape(str(record.get('target') or 'Change'))}: **{html.escape(status)}**"
    if record.get("changed"):
        head += " (the cell had changed; the user saw a new diff)"
    if record.get("note"):
        head += f". Note: {_escape_line(str(record['note']))}"
    return head + "\n\n" + _indent(_fence(str(record.get("diff") or "(no change)"), "diff"))


def _usage_line(usage: dict[str, Any]) -> str:
    from .events import Usage

    try:
        return Usage(**usage).describe()
    except TypeError:
        return "usage: unknown"


def _answer_markdown(turn: TurnRecord) -> str:
    r = turn.response
    parts = [f"**Kimi** ({html.escape(str(r.get('model') or 'model'))})"]
    reasoning = str(r.get("reasoning") or "")
    if reasoning.strip():
        parts.append("<details><summary>Reasoning</summary>\n\n<pre>" + html.escape(reasoning.strip())
                     + "</pre>\n\n</details>")
    steps = r.get("tool_steps") or []
    if steps:
        parts.append("Tool steps:\n\n" + "\n\n".join(_step_markdown(s) for s in steps))
    if turn.proposals:
        parts.append("Proposed changes:\n\n" + "\n\n".join(_proposal_markdown(p) for p in turn.proposals))
    text = str(r.get("text") or "")
    if text.strip():
        parts.append(safe_markdown(text.strip()))
    for notice in r.get("notices") or []:
        parts.append(f"> {_escape_line(str(notice))}")
    if r.get("error"):
        parts.append(f"> **Error:** {_escape_line(str(r['error']))}")
    parts.append(f"*{html.escape(_usage_line(r.get('usage') or {}))}*")
    return "\n\n".join(parts)


def _prompt_markdown(turn: TurnRecord, number: int) -> str:
    origin = {"sidebar": "sidebar", "magic": "%%kimi", "fix": "%kimi fix", "ask": "ask()"}.get(turn.source, turn.source)
    return f"### Turn {number} ({html.escape(origin)})\n\n**You**\n\n{safe_markdown(turn.prompt.strip())}"


def _title(what: str) -> str:
    return f"# Kimi conversation: {what}\n\nExported by kimi-jupyter."


def to_markdown(transcript: Transcript, secrets: list[str], what: str = "notebook cells") -> str:
    transcript = _redacted_transcript(transcript, secrets)  # before any cut
    blocks = [_title(what)]
    if not transcript.turns:
        blocks.append("*(no turns yet)*")
    for number, turn in enumerate(transcript.turns, start=1):
        blocks.append(_prompt_markdown(turn, number))
        blocks.append(_answer_markdown(turn))
    return redact("\n\n".join(blocks) + "\n", secrets)


def to_notebook(transcript: Transcript, secrets: list[str], what: str = "notebook cells") -> str:
    import nbformat

    transcript = _redacted_transcript(transcript, secrets)  # before any cut
    nb = nbformat.v4.new_notebook()
    nb.metadata["kimi_jupyter"] = {"export": what}
    cells = [("title", _title(what))]
    for number, turn in enumerate(transcript.turns, start=1):
        cells.append((f"turn-{number}-prompt", _prompt_markdown(turn, number)))
        cells.append((f"turn-{number}-answer", _answer_markdown(turn)))
    for cell_id, source in cells:
        cell = nbformat.v4.new_markdown_cell(redact(source, secrets))
        cell["id"] = cell_id  # stable ids: the same conversation exports to the same file
        nb.cells.append(cell)
    return redact(nbformat.writes(nb), secrets) + "\n"


def write_export(path: str | Path, transcript: Transcript, secrets: list[str], what: str,
                 force: bool = False) -> Path:
    """Write the export to ``path`` (atomically, never through a symlink); an existing file is
    refused unless ``force``."""
    from .safe_write import atomic_write

    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix in (".md", ".markdown"):
        text = to_markdown(transcript, secrets, what)
    elif suffix == ".ipynb":
        text = to_notebook(transcript, secrets, what)
    else:
        raise ValueError(f"Export to .md or .ipynb, not {suffix or 'a path without extension'!r}.")
    if target.parent and not target.parent.exists():
        raise ValueError(f"The folder {str(target.parent)!r} does not exist.")
    if not force and (target.exists() or target.is_symlink()):
        raise ValueError(f"{str(target)!r} exists; nothing was written. Add --force to replace it.")
    try:
        atomic_write(target, text, exclusive=not force)
    except FileExistsError:
        raise ValueError(f"{str(target)!r} exists; nothing was written. Add --force to replace it.") from None
    return target


def secrets_to_hide(session: Any = None) -> list[str]:
    """The configured key and the environment's key variables (`secrets.secrets_of`), to redact."""
    from .errors import KimiError
    from .secrets import secrets_of
    from .session import get_session

    try:
        return list(secrets_of((session or get_session()).settings()))
    except KimiError:  # settings that do not resolve: the environment's keys still count
        return list(secrets_of(None))


def sidebar_export(sidebar: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The sidebar's Export button: the file's content for the browser to download."""
    from .transcript import transcript_for

    request_id = str(data.get("request_id") or "")
    fmt = "ipynb" if data.get("format") == "ipynb" else "md"
    reply: dict[str, Any] = {"type": "export", "request_id": request_id, "filename": f"kimi-chat.{fmt}",
                             "mime": "application/x-ipynb+json" if fmt == "ipynb" else "text/markdown",
                             "content": "", "error": None}
    try:
        transcript = transcript_for(sidebar.memory)
        secrets = secrets_to_hide(sidebar.session)
        if fmt == "ipynb":
            reply["content"] = to_notebook(transcript, secrets, "sidebar chat")
        else:
            reply["content"] = to_markdown(transcript, secrets, "sidebar chat")
    except Exception as error:  # never a traceback in the kernel for a sidebar message
        reply["error"] = f"Export failed: {type(error).__name__}: {error}"
    return reply
