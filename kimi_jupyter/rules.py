"""Project rules: ``AGENTS.md`` and ``.kimi/rules.md`` sent as system instructions.

The rule files are looked for in the notebook's folder (the kernel's working directory)
and in each parent up to the repository root (the first folder that holds ``.git``); outside
a repository only the notebook's own folder counts, so a stray ``~/AGENTS.md`` is never
picked up. The outermost file comes first and the nearest last, so a folder's own rules have
the last word. Each file is read only when it is a regular file, at most `FILE_BYTES` of it;
all of them together are cut at `TOTAL_CHARS` characters (the cut is said in the text). The
API key is masked in them like in every other text sent.

`Kimi.rules = False` (or ``%%kimi --no-rules``) sends none. A `map()` row never carries them
(a rule text once per row would multiply a run's cost). `%kimi config` lists what was read.

Lookups are cached for `TTL` seconds per folder, so a notebook's many turns do not walk the
folders every time, while an edited AGENTS.md is picked up within a moment.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FILE_BYTES", "NAMES", "TOTAL_CHARS", "RuleFile", "find_rules", "rules_text"]

NAMES = ("AGENTS.md", os.path.join(".kimi", "rules.md"))
FILE_BYTES = 64 * 1024
TOTAL_CHARS = 32_000
MAX_LEVELS = 32  # folders walked upwards at most
TTL = 2.0


@dataclass(frozen=True)
class RuleFile:
    path: Path
    shown: str  # relative to the notebook's folder, as %kimi config prints it
    text: str
    cut: bool


def _repo_chain(start: Path) -> list[Path]:
    """``start`` and its parents up to the repository root, nearest first; only ``start``
    when no parent holds ``.git``."""
    chain = []
    folder = start
    for _ in range(MAX_LEVELS):
        chain.append(folder)
        if (folder / ".git").exists():
            return chain
        if folder.parent == folder:
            break
        folder = folder.parent
    return [start]


def _read(path: Path) -> tuple[str, bool] | None:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None
        with open(path, "rb") as handle:
            raw = handle.read(FILE_BYTES + 1)
    except OSError:
        return None
    cut = len(raw) > FILE_BYTES
    text = raw[:FILE_BYTES].decode("utf-8", errors="replace").replace("\x00", "").strip()
    return (text, cut) if text else None


def find_rules(cwd: str | os.PathLike[str] | None = None) -> list[RuleFile]:
    """The rule files that apply to ``cwd`` (default: the working directory), outermost first."""
    start = Path(cwd or os.getcwd()).resolve()
    found: list[RuleFile] = []
    for folder in reversed(_repo_chain(start)):
        for name in NAMES:
            path = folder / name
            read = _read(path)
            if read is None:
                continue
            try:
                shown = os.path.relpath(path, start)
            except ValueError:  # another drive (Windows)
                shown = str(path)
            found.append(RuleFile(path, shown, read[0], read[1]))
    return found


_cache: dict[Path, tuple[float, list[RuleFile]]] = {}
_lock = threading.Lock()


def cached_rules(cwd: str | os.PathLike[str] | None = None) -> list[RuleFile]:
    start = Path(cwd or os.getcwd())
    now = time.monotonic()
    with _lock:
        hit = _cache.get(start)
        if hit is not None and now - hit[0] < TTL:
            return hit[1]
    rules = find_rules(start)
    with _lock:
        _cache[start] = (now, rules)
    return rules


def rules_text(cwd: str | os.PathLike[str] | None = None, secrets: Iterable[str] = ()) -> str | None:
    """The system instruction made of the project's rule files; None when there are none."""
    rules = cached_rules(cwd)
    if not rules:
        return None
    parts = ["Project rules (from the files below, outermost first; the nearest file wins where they "
             "disagree). Follow them:"]
    for rule in rules:
        parts.append(f"## {rule.shown}\n{rule.text}" + ("\n(… rest of the file not read)" if rule.cut else ""))
    text = "\n\n".join(parts)
    if len(text) > TOTAL_CHARS:
        text = text[:TOTAL_CHARS] + f"\n(… {len(text) - TOTAL_CHARS} more characters of rules cut)"
    secrets = tuple(secrets)
    if secrets:
        from .secrets import redact_text

        text = redact_text(text, secrets)
    return text


def describe(cwd: str | os.PathLike[str] | None = None) -> str:
    """One line for `%kimi config`: which rule files are read."""
    rules = find_rules(cwd)
    if not rules:
        return "none found (AGENTS.md or .kimi/rules.md here or in a parent up to the repository root)"
    return ", ".join(f"{r.shown} ({len(r.text):,} chars{', cut' if r.cut else ''})" for r in rules)
