"""The one exception type the context layer lets escape.

Everything a user can cause while turning notebook objects into message content (an
undefined ``{name}``, a corrupt image, a video that is too large) is reported as a
:class:`ContextError` whose message says what happened and what to do about it, so the
magics can show one friendly line instead of a traceback from Pillow or pandas.
"""

from __future__ import annotations

__all__ = ["ContextError"]


class ContextError(ValueError):
    """A user-facing problem with the context of a prompt; the message says how to fix it."""
