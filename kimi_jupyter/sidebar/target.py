"""The sidebar's comm target, registered at ``%load_ext`` without loading the chat engine.

Registering must be cheap (it happens every time the extension loads); the engine in
`kimi_jupyter.sidebar.chat` is imported only when a sidebar actually opens a comm.
"""

from __future__ import annotations

from typing import Any

from .protocol import COMM_TARGET as TARGET

__all__ = ["TARGET", "register"]


def _on_open(comm: Any, open_msg: dict[str, Any]) -> None:
    from .chat import on_open

    on_open(comm, open_msg)


def register(shell: Any = None) -> bool:
    """Register the ``kimi_jupyter.chat`` comm target in this kernel (idempotent).

    Returns False outside a Jupyter kernel (terminal IPython), where there is no frontend
    to talk to. Uses the ``comm`` package's manager, which ipykernel 6.x/7.x install.
    """
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return False
    manager = None
    try:
        import comm

        manager = comm.get_comm_manager()
    except Exception:
        manager = None
    if manager is None or not hasattr(manager, "register_target"):
        manager = getattr(kernel, "comm_manager", None)  # ipykernel < 6.18 without the comm package
    if manager is None:
        return False
    manager.register_target(TARGET, _on_open)
    return True
