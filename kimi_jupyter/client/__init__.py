"""The wire: httpx transport, SSE decoding, dialect-tolerant chunk parsing, retries."""

from .chunks import TurnState, parse_usage
from .sse import SSEDecoder, iter_sse
from .transport import AsyncEventStream, AsyncKimiClient, EventStream, KimiClient

__all__ = [
    "AsyncEventStream",
    "AsyncKimiClient",
    "EventStream",
    "KimiClient",
    "SSEDecoder",
    "TurnState",
    "iter_sse",
    "parse_usage",
]
