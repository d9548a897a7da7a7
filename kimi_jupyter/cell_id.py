"""Which notebook cell is running: the frontend's cell id, for the conversation's keys.

JupyterLab, Notebook 7 and VS Code send the id of the cell they execute in the
``execute_request``'s metadata (``cellId``). ipykernel hands the request being executed to
the shell: ``shell.get_parent()`` (ipykernel's documented accessor, thread-aware; else the
kernel's ``get_parent("shell")``) returns it.
A shell outside a kernel (terminal IPython), or a client that sends no id (nbclient,
papermill, the console), gives None: such a cell's exchange is simply appended.
"""

from __future__ import annotations

from typing import Any

__all__ = ["current_cell_id"]

MAX_ID = 1000  # a UUID (JupyterLab), a cell URI (VS Code); anything longer is not an id


def current_cell_id(shell: Any) -> str | None:
    """The frontend's id of the cell ``shell`` is running, or None."""
    get_parent = getattr(shell, "get_parent", None)
    kernel = getattr(shell, "kernel", None)
    try:
        if callable(get_parent):
            parent = get_parent()
        elif callable(getattr(kernel, "get_parent", None)):  # ipykernel's Kernel.get_parent (6.0+)
            parent = kernel.get_parent("shell")
        else:
            return None
    except Exception:  # no request being executed
        return None
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    value = metadata.get("cellId") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None
