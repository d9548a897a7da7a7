"""The reply the simulator gives when nothing was queued or matched.

It powers the demo mode (``python -m kimi_jupyter.testing`` with no script), so it is
pleasant to read and fully deterministic: it says plainly that no model was called,
restates the start of the question, lists the attachments it received (images with MIME
type and pixel size, videos with their size, text length), and when the prompt asks for
code it adds a small fenced Python block that is valid Python. In JSON mode
(``response_format: {"type": "json_object"}``) the answer is a JSON object instead (with
every key the question names, as in "a key named 'city'"); with a ``json_schema`` response
format it is the schema's smallest instance (``schemas.example``), as compact JSON.

On a model with thinking effort levels (``models.py``) the reasoning grows with the effort
(low < high < max) and the answer says which effort was in force. :func:`forced_call` is
the call a request with ``tool_choice: "required"`` gets.

The stand-in ends by saying how to get real answers: a key (`KEY_HINT`). Two kinds of
prompt get a fitting answer instead of it: a fix request (``%kimi fix``, "Fix with Kimi")
gets a minimal fix of that cell or a plain "no fix" (``demo_fix.py``), never the example
code; a classification prompt gets one of the labels it offers (``demo_labels.py``), so
``map()`` fills its column with categories.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .demo_fix import fix_reply, is_fix_prompt
from .demo_labels import classify
from .replies import Conversation, Reply, ToolCall
from .schemas import example
from .tokens import Media

BANNER = "*(Simulated reply - no real model was called.)*"
_CODE_WORDS = re.compile(r"(?i)\b(code|plot|chart|graph|function|fix|script|python|implement|write a)\b")
_EXAMPLE_CODE = '''def summarize(values):
    """Return the count, mean and maximum of a list of numbers."""
    values = list(values)
    if not values:
        return {"count": 0, "mean": None, "max": None}
    return {"count": len(values), "mean": sum(values) / len(values), "max": max(values)}


print(summarize([3, 1, 4, 1, 5, 9, 2, 6]))'''
#: How to get real answers: what a user of the demo needs is a key, not another URL.
KEY_HINT = ("For real answers from Kimi, set your key: `export MOONSHOT_API_KEY=sk-...` (or a line "
            "`MOONSHOT_API_KEY=sk-...` in `notebooks/.env`) and start `.ci/lab` again.")
# Steps of thought added for each effort level (low < high < max).
_EFFORT_STEPS = (
    "First I note what the question asks for and what it leaves open.",
    "Then I check which parts the answer must cover: the text, the attachments and the tools offered.",
    "Next I consider a second way to read the question and keep the plainer one.",
    "Finally I check the answer against the question once more before writing it.",
)
_STEPS_FOR = {"low": 1, "high": 2, "max": len(_EFFORT_STEPS)}
_NAMED_KEYS = (
    re.compile(r"""(?i)\bkeys?\s+(?:named\s+|called\s+)?['"“`]([A-Za-z_][\w-]{0,63})['"”`]"""),
    re.compile(r"""键\s*['"“`]?([A-Za-z_][\w-]{0,63})"""),
)
_WORDS = re.compile(r"[a-z0-9]+|[^\x00-\x7f]")


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _size(nbytes: int) -> str:
    if nbytes >= 1024 * 1024:
        return f"{nbytes / (1024 * 1024):.1f} MB"
    if nbytes >= 1024:
        return f"{nbytes / 1024:.1f} KB"
    return f"{nbytes} bytes"


def describe_media(item: Media) -> str:
    """One line about an attachment, e.g. ``image/png, 640×480 px (12.3 KB)``."""
    mime = item.mime or (f"{item.kind}/{item.format}" if item.format else item.kind)
    if item.source == "file":
        return f"{item.kind} uploaded as a file ({item.url_start})"
    if item.kind == "image":
        size = f"{item.width}×{item.height} px" if item.width and item.height else "unknown size"
        return f"{mime}, {size} ({_size(item.nbytes)})"
    return f"{mime}, {_size(item.nbytes)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _tool_names(tools: Sequence[Any] | None) -> list[str]:
    names = []
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def named_keys(text: str) -> list[str]:
    """Keys the question asks a JSON answer to contain ("a key named 'city'", "包含键 capital")."""
    names: list[str] = []
    for pattern in _NAMED_KEYS:
        names += [m.group(1) for m in pattern.finditer(text)]
    return list(dict.fromkeys(names))


def forced_call(tools: Sequence[Any], question: str) -> ToolCall:
    """The call ``tool_choice: "required"`` makes: the offered function whose name and
    description share most words with ``question`` (the first on a tie), with the smallest
    arguments its parameter schema accepts."""
    functions = [t for t in tools if isinstance(t, Mapping) and t.get("type", "function") == "function"]
    words = set(_WORDS.findall(question.lower()))

    def score(tool: Mapping[str, Any]) -> int:
        function = tool.get("function") or {}
        text = f"{function.get('name') or ''} {function.get('description') or ''}".lower().replace("_", " ")
        return len(words & set(_WORDS.findall(text)))

    if not functions:
        return ToolCall("$web_search", {"query": question})
    best = max(functions, key=score)  # max keeps the first of equals
    function = best.get("function") or {}
    parameters = function.get("parameters")
    arguments = example(parameters) if isinstance(parameters, Mapping) else {}
    return ToolCall(str(function.get("name")), arguments if isinstance(arguments, dict) else {})


def _reasoning(asked: str, attached: str, effort: str | None) -> str:
    first = (
        f"{asked} This is the loopback simulator, so I will restate the question{attached} "
        "and answer with a short, deterministic example."
    )
    if effort is None:
        return first
    steps = " ".join(_EFFORT_STEPS[: _STEPS_FOR.get(effort, len(_EFFORT_STEPS))])
    return f"Thinking effort: {effort}. {first} {steps}"


def demo_continuation(prefix: str, conv: Conversation, media: Sequence[Media], *, thinking: bool,
                      json_mode: bool = False) -> Reply:
    """The demo answer in partial mode: what follows ``prefix`` (never the prefix again).

    A python fence is continued with the example code and a closing fence, ``{`` with the
    rest of the JSON answer; any other prefix with the demo answer after a space.
    """
    full = demo_reply(conv, media, thinking=thinking, json_mode=json_mode or prefix.lstrip().startswith("{"))
    if prefix.lstrip().startswith("```"):
        return Reply(text=_EXAMPLE_CODE + "\n```", reasoning=full.reasoning)
    if full.text.startswith(prefix):
        return Reply(text=full.text[len(prefix):], reasoning=full.reasoning)
    return Reply(text=" " + full.text, reasoning=full.reasoning)


def demo_reply(
    conv: Conversation,
    media: Sequence[Media],
    *,
    thinking: bool,
    tools: Sequence[Any] | None = None,
    json_mode: bool = False,
    effort: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Reply:
    """The default answer to ``conv``; ``media`` are the attachments of the prompt, ``effort``
    the thinking effort in force (None: the model has no levels), ``schema`` a
    ``json_schema`` response format's schema."""
    question = conv.last_user_text
    if not json_mode and schema is None and not tools and conv.tool_result_name is None:
        if is_fix_prompt(question):
            return fix_reply(question, BANNER, thinking=thinking)
        label = classify(question)
        if label is not None:
            return Reply(text=label, reasoning=f"A classification: the text fits {label!r} best." if thinking else "")
    user_media = [m for m in media if conv.messages[m.message_index].get("role") == "user"]
    images = [m for m in user_media if m.kind == "image"]
    videos = [m for m in user_media if m.kind == "video"]
    wants_code = bool(_CODE_WORDS.search(question))
    media_counts = [_plural(n, noun) for n, noun in ((len(images), "image"), (len(videos), "video")) if n]
    attached = f" and look at what is attached ({', '.join(media_counts)})" if media_counts else ""
    asked = f"The user asked: “{_excerpt(question, 80)}”." if question else "The user sent no text."
    reasoning = _reasoning(asked, attached, effort) if thinking else ""
    if schema is not None:
        return Reply(text=json.dumps(example(schema), ensure_ascii=False, separators=(",", ":")), reasoning=reasoning)
    if json_mode:
        answer = {
            "simulated": True,
            "question": _excerpt(question),
            "images": [describe_media(m) for m in images],
            "videos": [describe_media(m) for m in videos],
            "text_characters": len(question),
        }
        for key in named_keys(question):
            answer.setdefault(key, "simulated value")
        return Reply(text=json.dumps(answer, ensure_ascii=False), reasoning=reasoning)
    lines = [BANNER, "", f"You asked: “{_excerpt(question)}”" if question else "You sent no text.", ""]
    counts = [
        f"{len(question)} characters of text",
        _plural(len(images), "image"),
        _plural(len(videos), "video"),
    ]
    lines.append(f"**What I received:** {', '.join(counts)}.")
    lines += [f"- image {i}: {describe_media(m)}" for i, m in enumerate(images, 1)]
    lines += [f"- video {i}: {describe_media(m)}" for i, m in enumerate(videos, 1)]
    if thinking and effort is not None:
        lines.append(f"- thinking effort: {effort}")
    names = _tool_names(tools)
    if names:
        lines.append(f"- tools offered: {', '.join(names)}")
    if conv.tool_result_name is not None:
        lines.append(f"- a result from the `{conv.tool_result_name or 'unknown'}` tool")
    if wants_code:
        lines += [
            "",
            "Here is a small example in place of real generated code:",
            "",
            "```python",
            _EXAMPLE_CODE,
            "```",
        ]
    lines += ["", KEY_HINT]
    return Reply(text="\n".join(lines), reasoning=reasoning)
