"""The kernel side of the JupyterLab chat sidebar.

The sidebar (``labextension/``) opens a comm named ``kimi_jupyter.chat`` to the notebook's
kernel. The kernel does the API calls with the same engine, settings and key as ``%%kimi``
(the one `Turn`), and streams the same events back as JSON, so the chat can see the kernel's
variables (``{df}`` in a prompt works as in a cell) and never holds the key itself.

- `target`: registers the comm target at ``%load_ext`` (cheap: loads nothing else);
- `protocol`: the messages on the comm, as typed dicts (the TypeScript side mirrors them);
- `chat`: the sidebar's chat state (its own conversation, the shared ledger and clients)
  and the dispatch of frontend messages;
- `renderer`: the turn renderer that sends events over the comm, deltas coalesced;
- `approver`: Approve / Deny for the agent's code, answered from the sidebar.

Importing this package imports none of them.
"""

from __future__ import annotations

__all__: list[str] = []
