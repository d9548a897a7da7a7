"""The demo's answer to a classification prompt: one of the labels the prompt offers.

``kimi_jupyter.map("Classify as billing, shipping, product or praise: {text}", tickets)``
in demo mode should fill the column with categories, not with the simulator's stand-in
paragraph. A prompt that asks to classify (or categorise) something *as* or *into* a list
of two to twelve short labels, and not for code that does it, is answered with exactly one
of them:

* the label whose cue words (a small built-in list for common support, sentiment and
  priority labels, plus the label itself) occur most often in the rest of the prompt;
* with no cue at all, a label picked from a checksum of the text, so the same text always
  gets the same label (the demo is deterministic) and different texts spread over them.

The answer is bare (``billing``), as a model asked for "the one word" answers.
"""

from __future__ import annotations

import re
import zlib

__all__ = ["classification_labels", "classify"]

_ASK = re.compile(
    r"(?i)\b(?:classify|categori[sz]e)\b[^\n:]{0,80}?\b(?:as|into)\b\s*(?:one of\s*)?:?\s*"
    r"(?P<labels>[^\n:.?!]{3,300}?)\s*(?:[:.?!\n]|$)"
)
_WANTS_CODE = re.compile(r"(?i)\b(code|function|script|python|implement|write|program|class)\b")
_SPLIT = re.compile(r"\s*(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|/|\|)\s*")
# Words that suggest a label, for labels people often classify into.
_CUES: dict[str, tuple[str, ...]] = {
    "billing": ("charge", "refund", "invoice", "payment", "paid", "bill", "money", "price", "cost"),
    "shipping": ("arriv", "deliver", "courier", "parcel", "package", "ship", "track", "lost", "late"),
    "product": ("stopped working", "broke", "scratch", "defect", "fault", "damag", "quality", "work"),
    "praise": ("thank", "great", "perfect", "love", "excellent", "early", "happy", "awesome"),
    "positive": ("good", "great", "love", "excellent", "happy", "perfect", "thank", "nice"),
    "negative": ("bad", "terrible", "hate", "awful", "broke", "worst", "disappoint", "wrong"),
    "complaint": ("bad", "terrible", "broke", "wrong", "never", "disappoint", "late", "lost"),
    "question": ("?", "how", "what", "when", "where", "why", "can i", "could"),
    "spam": ("win", "free", "prize", "click", "offer", "winner"),
    "urgent": ("urgent", "asap", "immediately", "now", "critical", "down"),
    "bug": ("error", "crash", "broke", "fail", "exception", "bug"),
    "feature": ("would be nice", "please add", "feature", "support for", "could you add"),
}


def classification_labels(prompt: str) -> list[str] | None:
    """The labels a classification prompt offers (None: not such a prompt)."""
    found = _ASK.search(prompt)
    if found is None or _WANTS_CODE.search(prompt[: found.start()]):
        return None  # "write a function that classifies ..." asks for code, not for a label
    labels = [part.strip(" \t'\"`*") for part in _SPLIT.split(found.group("labels"))]
    labels = [label for label in labels if label]
    if not 2 <= len(labels) <= 12 or any(len(label.split()) > 3 or len(label) > 40 for label in labels):
        return None
    return labels


def classify(prompt: str) -> str | None:
    """One of the prompt's labels for the text it carries, or None if it asks for no labels."""
    labels = classification_labels(prompt)
    if labels is None:
        return None
    found = _ASK.search(prompt)
    assert found is not None
    text = (prompt[: found.start()] + " " + prompt[found.end():]).lower()
    scores = []
    for label in labels:
        cues = (*_CUES.get(label.lower(), ()), label.lower())
        scores.append(sum(text.count(cue) for cue in cues))
    best = max(scores)
    if best > 0:
        return labels[scores.index(best)]
    return labels[zlib.crc32(text.strip().encode("utf-8")) % len(labels)]
