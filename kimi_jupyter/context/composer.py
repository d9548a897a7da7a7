"""One user message from what an entry point collected: the one place content is built.

`%%kimi` (the cell, ``--cells``, ``--plot``, the ``-f`` hint), ``ask()``/``aask()`` (the
prompt and positional attachments) and the sidebar (attached cells and images, then the
prompt) all call `compose`, so a ``{name}`` means the same thing everywhere and every
message is finished the same way (adjacent text merged; one text part sent as a string).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from ..secrets import redact
from .errors import ContextError
from .interpolate import build_content

__all__ = ["cell_part", "compose", "flatten", "frontend_parts", "merge_text"]

Part = dict[str, Any]


def merge_text(parts: list[Part]) -> list[Part]:
    """Adjacent text parts joined into one (never an empty message)."""
    merged: list[Part] = []
    for part in parts:
        if part.get("type") == "text" and merged and merged[-1].get("type") == "text":
            merged[-1] = {"type": "text", "text": merged[-1]["text"] + part["text"]}
        else:
            merged.append(part)
    return merged or [{"type": "text", "text": ""}]


def flatten(parts: list[Part]) -> str | list[Part]:
    """A message of one text part is sent as a plain string (the common, cheapest form)."""
    if len(parts) == 1 and parts[0].get("type") == "text":
        return str(parts[0]["text"])
    return parts


def compose(
    prompt: str,
    namespace: Mapping[str, Any] | None,
    *,
    frame_budget: int,
    image_max_size: tuple[int, int],
    before: Iterable[Part] = (),
    attachments: tuple[Any, ...] = (),
    after: Iterable[Part] = (),
    history: Any = None,
    secrets: tuple[str, ...] = (),
    media: Any = None,
) -> str | list[Part]:
    """The user message: ``before`` parts, the prompt (``{name}`` filled from ``namespace``;
    with no namespace the prompt is taken literally), the ``attachments`` converted like
    ``{name}`` references, then ``after`` parts. ``secrets`` (`kimi_jupyter.secrets.secrets_of`)
    are masked everywhere in it, whatever path they took (values are masked before they are
    cut, so no part of a key survives a truncation). ``media`` (a `context.media.MediaSink`)
    sends big media through the Files API and turns document paths into system messages."""
    names: dict[str, Any] = dict(namespace or {})
    template = prompt if namespace is not None else prompt.replace("{", "{{").replace("}", "}}")
    for number, obj in enumerate(attachments, 1):
        key = f"attachment_{number}"
        while key in names:
            key = "_" + key
        names[key] = obj
        template += f"\n{{{key}}}"
    parts: list[Part] = list(before)
    if template.strip() or not parts:
        parts.extend(build_content(template, names, frame_budget=frame_budget, image_max_size=image_max_size,
                                   history=history, media=media))
    parts.extend(after)
    return redact(flatten(merge_text(parts)), secrets)  # every part, whatever put it there


def cell_part(source: str, outputs: str = "", label: str = "Context: a notebook cell") -> Part:
    """A notebook cell (source and text outputs) as context text."""
    text = f"{label}\n```python\n{source.rstrip()}\n```\n"
    if outputs.strip():
        text += f"Its output:\n```\n{outputs.rstrip()}\n```\n"
    return {"type": "text", "text": text + "\n"}


def frontend_parts(attachments: Iterable[Any], settings: Any, media: Any = None) -> list[Part]:
    """The sidebar's attachments (``{"kind": "cell"|"image"|"file", ...}``) as content parts;
    a file picked with Attach file goes through ``media`` like a ``{path}`` would."""
    from .images import image_part

    parts: list[Part] = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        if attachment.get("kind") == "cell":
            parts.append(cell_part(str(attachment.get("source") or ""), str(attachment.get("outputs") or "")))
        elif attachment.get("kind") == "image":
            parts.append({"type": "text", "text": "[image attached from the notebook]\n"})
            parts.append(image_part(_image_bytes(attachment), max_size=settings.image_max_size))
        elif attachment.get("kind") == "file":
            from .media import file_attachment_parts

            parts.extend(file_attachment_parts(attachment, settings, media))
    return parts


def _image_bytes(attachment: dict[str, Any]) -> bytes:
    mime = str(attachment.get("mime") or "")
    if not mime.startswith("image/"):
        raise ContextError(f"The attachment is {mime or 'of no type'}, not an image.")
    try:
        return base64.b64decode(str(attachment.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ContextError("The attached image could not be read (bad base64).") from None
