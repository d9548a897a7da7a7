"""The wire: httpx transport, SSE decoding, dialect-tolerant chunk parsing, retries, files."""

from .chunks import TurnState, parse_usage
from .files import AsyncFilesClient, FileObject, FilesClient
from .sse import SSEDecoder, iter_sse
from .transport import AsyncEventStream, AsyncKimiClient, EventStream, KimiClient

__all__ = [
    "AsyncEventStream",
    "AsyncFilesClient",
    "AsyncKimiClient",
    "EventStream",
    "FileObject",
    "FilesClient",
    "KimiClient",
    "SSEDecoder",
    "TurnState",
    "iter_sse",
    "parse_usage",
]
