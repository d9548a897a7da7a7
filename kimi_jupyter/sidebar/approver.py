"""The agent's approver for sidebar turns: Approve/Deny arrive as ``approve`` messages.

While the turn blocks the kernel, a shell pump (``agent.ui_poll``) reads this comm's
messages and holds every other message until the wait ends. No pump, no comm, a timeout,
or the sidebar closing while it waits: denied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .chat import SidebarChat

__all__ = ["CommApprover"]


class CommApprover:
    def __init__(self, sidebar: SidebarChat, comm_id: str | None, shell: Any, *, auto: bool = False,
                 timeout: float | None = None) -> None:
        self.sidebar, self.comm_id, self.shell = sidebar, comm_id, shell
        self.auto, self.timeout = auto, timeout

    def __call__(self, call_id: str, tool: str, code: str) -> Any:
        from ..agent.approval import Decision
        from ..agent.ui_poll import ShellPump

        if self.auto:
            return Decision(True, "auto")
        # Only an answer to this very request counts: a stale or early "approve" (a click
        # that landed after Stop, or one naming a predictable id) must never run new code.
        self.sidebar.approvals.clear()
        kernel = getattr(self.shell, "kernel", None)
        if kernel is None or not self.comm_id:
            return Decision(False, "no-ui")
        try:
            pump = ShellPump.open(kernel)
        except Exception:
            return Decision(False, "no-ui")
        self.sidebar.pending_approval = call_id
        try:
            pump.watch([self.comm_id])
            if not pump.wait(lambda: call_id in self.sidebar.approvals, self.timeout):
                return Decision(False, "timeout")
            approved, how = self.sidebar.approvals.pop(call_id)
            return Decision(approved, how)
        finally:
            self.sidebar.pending_approval = None
            self.sidebar.approvals.clear()
            pump.close()
