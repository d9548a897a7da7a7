"""A stdio MCP server for the fault tests, written with the SDK's MCPServer (FastMCP in mcp 1.x).

``python faulty.py [--many N] [--pid-file PATH]``. Its tools misbehave on request: crash
mid-call, hang, answer 10 MB, answer with an image, report whether the kernel's API key
reached its environment. ``--many N`` adds N trivial tools.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent, TextContent, ToolAnnotations

parser = argparse.ArgumentParser()
parser.add_argument("--many", type=int, default=0)
parser.add_argument("--pid-file")
options = parser.parse_args()
if options.pid_file:
    with open(options.pid_file, "w") as handle:
        handle.write(str(os.getpid()))

server = MCPServer("faulty")
READ_ONLY = ToolAnnotations(read_only_hint=True)


@server.tool(annotations=READ_ONLY, description="Echo the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Write a line to a file (not read-only).")
def write_note(text: str) -> str:
    return f"wrote {len(text)} characters"


@server.tool(annotations=READ_ONLY, description="Whether an API key variable reached this server.")
def env_key() -> str:
    found = [n for n in ("MOONSHOT_API_KEY", "KIMI_API_KEY") if n in os.environ]
    return "key variables: " + (", ".join(found) or "none")


@server.tool(description="Die in the middle of the call.")
def crash() -> str:
    sys.stderr.write("faulty: about to crash on purpose\n")
    sys.stderr.flush()
    os._exit(7)


@server.tool(description="Never answer.")
def hang() -> str:
    time.sleep(3600)
    return "late"


@server.tool(annotations=READ_ONLY, description="Answer with 10 MB of text.")
def big() -> str:
    return "0123456789" * (1024 * 1024)


@server.tool(annotations=READ_ONLY, description="Answer with a picture.")
def picture() -> list[TextContent | ImageContent]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return [TextContent(type="text", text="a green square"),
            ImageContent(type="image", data=data, mime_type="image/png")]


def _numbered(i: int):
    def tool(x: int = 0) -> str:
        return f"tool {i}: {x}"
    return tool


for i in range(options.many):
    server.tool(name=f"t{i:03d}", description=f"Trivial tool number {i}.")(_numbered(i))

if __name__ == "__main__":
    server.run("stdio")
