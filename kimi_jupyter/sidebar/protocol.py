"""The JSON spoken between the kernel and the JupyterLab sidebar, in one place.

The sidebar (``labextension/``) opens a comm named ``kimi_jupyter.chat`` to the notebook's
kernel. Every message is a JSON object: the frontend's carry ``action``, the kernel's carry
``type``. A turn goes::

    frontend                                   kernel
    {"action": "hello"}                   ->   HelloReply
    {"action": "models"}                  ->   ModelsReply          (fetched off the shell)
    {"action": "gauge"}                   ->   GaugeMessage         (after each done)
    {"action": "ask", "request_id", ...}  ->   StartMessage
                                          ->   EventMessage ...     (any number)
    {"action": "approve", "id", ...}           (answers an ApprovalRequested event)
                                          ->   DoneMessage          (the exact final snapshot)
    {"action": "reset"}                   ->   ResetReply
    anything the kernel cannot serve      ->   ErrorMessage

``EventMessage.event`` is ``events.event_to_json(e)``: the event dataclass's fields plus
``type``, its class name (``kimi_jupyter/events.py`` is the vocabulary). ``DoneMessage.response``
is ``Response.summary()``, the same dict the saved ``application/vnd.kimi.response+json``
bundle holds (with ``meta`` added there).

Two rules the sidebar relies on:

* an interrupt is told by ``error_kind == "Interrupted"`` (:data:`INTERRUPTED_KIND`), never
  by the wording of ``error``;
* costs are never summed across currencies: ``usage.cost`` is None once a turn's requests
  were priced in two currencies, and ``costs`` holds the total per currency.

The TypeScript mirror is ``labextension/src/protocol.ts`` (interface ``I<Name>`` for each
TypedDict here, one field per line); ``tests/test_protocol_golden.py`` checks that it names
every message, field and event, and ``tests/golden/turns/`` holds event streams with the
snapshot both ``Response.feed`` and the sidebar's ``TurnState`` must fold them into.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, Union

from ..events import INTERRUPTED_KIND

__all__ = [
    "COMM_TARGET",
    "INTERRUPTED_KIND",
    "RESPONSE_MIME",
    "AskOptions",
    "AskRequest",
    "ApproveRequest",
    "CellAttachment",
    "DoneMessage",
    "ErrorMessage",
    "ExportReply",
    "ExportRequest",
    "EventMessage",
    "FrontendMessage",
    "HelloReply",
    "HelloRequest",
    "ImageAttachment",
    "KernelMessage",
    "ModelsReply",
    "GaugeMessage",
    "GaugeCost",
    "ModelsRequest",
    "GaugeRequest",
    "ResetReply",
    "ResetRequest",
    "ResponseSummary",
    "SavedResponse",
    "StartMessage",
    "ToolStepJSON",
    "TurnMetaJSON",
    "UsageJSON",
]

COMM_TARGET = "kimi_jupyter.chat"
RESPONSE_MIME = "application/vnd.kimi.response+json"


# -- the pieces ---------------------------------------------------------------------------


class _UsageJSON(TypedDict):
    prompt: int | None
    completion: int | None
    cached: int | None
    reasoning: int | None
    total: int | None
    cost: float | None
    currency: str | None
    reported: bool


class UsageJSON(_UsageJSON, total=False):
    """``events.Usage`` as JSON. Counts are None when not reported; ``cost`` is None when
    unknown or when the turn's requests were priced in two currencies (see ``costs``);
    ``note`` ("price unknown: set Kimi.prices") and ``cache_write`` (prompt tokens written to
    the provider's prompt cache) only when there is one."""

    note: str
    cache_write: int


class ToolStepJSON(TypedDict):
    """``response.ToolStep`` as JSON (``seconds`` is left out of saved bundles)."""

    id: str
    name: str
    arguments: str
    state: str  # requested | awaiting approval | approved | running | denied | done | error
    result: str | None
    error: str | None
    seconds: float | None
    approved: bool | None
    reasoning: str  # what the model reasoned in the request that asked for this call


class _TurnMetaJSON(TypedDict):
    model: str
    thinking: bool
    provider: str | None
    context_window: int | None
    title: str | None


class TurnMetaJSON(_TurnMetaJSON, total=False):
    """``display.base.TurnMeta`` as JSON: what a view shows before any event arrives;
    ``effort`` only when a thinking effort was sent."""

    effort: str


class ResponseSummary(TypedDict):
    """``Response.summary()``: the final snapshot of a turn."""

    model: str | None
    text: str
    reasoning: str
    notices: list[str]
    tool_steps: list[ToolStepJSON]
    usage: UsageJSON
    #: total cost per currency code ("" for a cost without one), only priced requests
    costs: dict[str, float]
    finish_reason: str | None
    cut: bool
    error: str | None
    #: the error's class (``Failed.kind``): "Interrupted", "StreamCutError", "BudgetExceeded", ...
    error_kind: str | None


class SavedResponse(ResponseSummary):
    """The ``application/vnd.kimi.response+json`` bundle a ``%%kimi`` cell saves."""

    meta: TurnMetaJSON


# -- frontend -> kernel -------------------------------------------------------------------


class HelloRequest(TypedDict):
    """Also accepted as the ``comm_open`` data."""

    action: Literal["hello"]


class ModelsRequest(TypedDict):
    action: Literal["models"]


class GaugeRequest(TypedDict):
    """The context gauge, asked after each ``done`` (the usage ledger has the turn by then)."""

    action: Literal["gauge"]


class ResetRequest(TypedDict):
    action: Literal["reset"]


class _CellAttachment(TypedDict):
    kind: Literal["cell"]
    source: str
    outputs: str


class CellAttachment(_CellAttachment, total=False):
    """A notebook cell sent as context: its source and its text outputs."""

    label: str


class _ImageAttachment(TypedDict):
    kind: Literal["image"]
    mime: str
    data: str


class ImageAttachment(_ImageAttachment, total=False):
    """An image from the notebook (``data`` is base64)."""

    label: str


class _FileAttachment(TypedDict):
    kind: Literal["file"]
    path: str


class FileAttachment(_FileAttachment, total=False):
    """A file picked with Attach file: a path relative to the kernel's working directory (a
    document becomes its extracted text; an image or video goes as media)."""

    label: str


class AskOptions(TypedDict, total=False):
    model: str
    effort: str  # thinking effort (low / high / max) for a model that has effort levels
    thinking: bool
    agent: bool
    prefill: str  # partial mode: the answer starts with this text


class _AskRequest(TypedDict):
    action: Literal["ask"]
    request_id: str
    prompt: str


class AskRequest(_AskRequest, total=False):
    """One turn: the prompt (``{name}`` fills in a kernel variable), attachments first."""

    attachments: list[CellAttachment | ImageAttachment | FileAttachment]
    options: AskOptions


class ApproveRequest(TypedDict):
    """The user's answer to the ``ApprovalRequested`` event with this ``id``."""

    action: Literal["approve"]
    id: str
    approved: bool


class ExportRequest(TypedDict):
    """The sidebar's Export button: this chat as a file (``kimi_jupyter/export.py``)."""

    action: Literal["export"]
    request_id: str
    format: str  # "md" or "ipynb"


FrontendMessage = Union[HelloRequest, ModelsRequest, GaugeRequest, ResetRequest, AskRequest, ApproveRequest,
                        ExportRequest]


# -- kernel -> frontend -------------------------------------------------------------------


class _HelloReply(TypedDict):
    type: Literal["hello"]
    version: str
    has_key: bool
    error: str | None  # a settings problem, else None


class HelloReply(_HelloReply, total=False):
    """What the kernel says about itself (never the key). Without valid settings only
    ``version``, ``has_key`` and ``error`` are sent."""

    model: str
    provider: str
    base_url: str  # without credentials (``settings.public_url``)
    thinking: bool


class StartMessage(TypedDict):
    type: Literal["start"]
    request_id: str
    meta: TurnMetaJSON


class EventMessage(TypedDict):
    """One event of the turn (text and reasoning deltas come coalesced, ~10 a second)."""

    type: Literal["event"]
    request_id: str
    event: dict[str, Any]  # events.event_to_json(e)


class _RateLimits(TypedDict):
    text: str
    low: bool


class RateLimits(_RateLimits, total=False):
    """The rate limits the server announced last (``ratelimit.RateLimits.status``)."""

    remaining_requests: int | None
    limit_requests: int | None
    remaining_tokens: int | None
    limit_tokens: int | None


class _DoneMessage(TypedDict):
    type: Literal["done"]
    request_id: str
    response: ResponseSummary
    meta: TurnMetaJSON


class DoneMessage(_DoneMessage, total=False):
    """The end of a turn: the exact final snapshot, and the rate limits when the server sent any."""

    rate_limits: RateLimits | None


class GaugeCost(TypedDict):
    cost: float | None
    currency: str | None


class GaugeMessage(TypedDict):
    """After each turn: the context window, the tokens the last request used (reported) with
    an estimated breakdown (system, history, attachments, message), and the chat's and the
    session's costs as ``%kimi usage`` counts them."""

    type: Literal["gauge"]
    model: str
    window: int | None
    used: int | None
    parts: dict[str, int]
    chat_cost: GaugeCost
    session_cost: GaugeCost


class _ModelsReply(TypedDict):
    type: Literal["models"]
    models: list[str]
    current: str | None
    error: str | None


class ModelsReply(_ModelsReply, total=False):
    """The provider's models, the current one first; on failure only the current one.
    ``efforts``: the effort levels of the models that have them (the model registry)."""

    efforts: dict[str, list[str]]


class ResetReply(TypedDict):
    type: Literal["reset"]


class _ErrorMessage(TypedDict):
    type: Literal["error"]
    message: str


class ErrorMessage(_ErrorMessage, total=False):
    """A message the kernel cannot serve (unknown action, a turn already running)."""

    request_id: str | None


class ExportReply(TypedDict):
    """The export's content for the browser to download (``error`` when it failed)."""

    type: Literal["export"]
    request_id: str
    filename: str
    mime: str
    content: str
    error: str | None


KernelMessage = Union[HelloReply, StartMessage, EventMessage, DoneMessage, GaugeMessage, ModelsReply, ResetReply,
                      ExportReply, ErrorMessage]
