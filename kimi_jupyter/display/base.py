"""Where the renderers run: the display modes, and whether this is a Jupyter kernel.

The renderer interface itself (``start(meta)``, ``handle(event)``, ``finish(response)``)
and `TurnMeta` belong to the turn engine (``kimi_jupyter.turn``) and are re-exported here
for the renderers.
"""

from __future__ import annotations

import sys
from typing import Any

from ..turn import NullRenderer, Renderer, TurnMeta

__all__ = ["MODES", "NullRenderer", "Renderer", "TurnMeta", "in_kernel", "widgets_available"]

MODES = ("auto", "widget", "markdown", "text", "none")


def in_kernel(shell: Any = None) -> bool:
    """True inside a Jupyter kernel (a ZMQInteractiveShell or a subclass, e.g. Colab's)."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and any(cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__)


def widgets_available() -> bool:
    """Whether ipywidgets imports (only called when a renderer is chosen, never at import)."""
    try:
        import ipywidgets  # noqa: F401
    except Exception:  # a missing or broken install both mean "no widgets"
        return False
    return True
