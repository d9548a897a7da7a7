"""Which notebook cell is running: the frontend's cell id, for the conversation's keys.

JupyterLab and Notebook 7 (and other frontends that follow them) send the id of the cell
they execute in the ``execute_request``'s metadata (``cellId``). ipykernel hands the request
being executed to the shell: ``shell.get_parent()`` (ipykernel's documented accessor,
thread-aware; else the kernel's ``get_parent("shell")``) returns it.
A shell outside a kernel (terminal IPython), or a client that sends no id (nbclient,
papermill, the console), gives None: such a cell's exchange is simply appended.

JupyterLab and Notebook 7 also send ``deletedCells``: the ids of the cells deleted since the
notebook last executed anything. A deleted ``%%kimi`` cell's exchange leaves the conversation.
"""

from __future__ import annotations

from typing import Any

__all__ = ["current_cell_id", "deleted_cell_ids"]

MAX_ID = 1000  # a UUID in JupyterLab, a cell URI elsewhere; anything longer is not an id


def _metadata(shell: Any) -> dict[str, Any]:
    """The metadata of the execute_request ``shell`` is running ({} outside a kernel)."""
    get_parent = getattr(shell, "get_parent", None)
    kernel = getattr(shell, "kernel", None)
    try:
        if callable(get_parent):
            parent = get_parent()
        elif callable(getattr(kernel, "get_parent", None)):  # ipykernel's Kernel.get_parent (6.0+)
            parent = kernel.get_parent("shell")
        else:
            return {}
    except Exception:  # no request being executed
        return {}
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def current_cell_id(shell: Any) -> str | None:
    """The frontend's id of the cell ``shell`` is running, or None."""
    value = _metadata(shell).get("cellId")
    return value if _is_id(value) else None


def deleted_cell_ids(shell: Any) -> list[str]:
    """The cells deleted in the notebook since its last execution (JupyterLab and Notebook 7
    send their ids as ``deletedCells`` with the next execute_request, whatever cell it runs)."""
    value = _metadata(shell).get("deletedCells")
    return [v for v in value[:10_000] if _is_id(v)] if isinstance(value, list) else []
