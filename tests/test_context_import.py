"""Importing the context layer must stay cheap: no heavy library at import time."""

from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_no_heavy_library():
    code = (
        "import sys, kimi_jupyter.context as c\n"
        "heavy = {'pandas', 'numpy', 'PIL', 'matplotlib', 'polars'}\n"
        "loaded = heavy & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
        "assert c.build_content('{x}', {'x': 1}) == [{'type': 'text', 'text': '1'}]\n"
        "assert c.summarize_frame([1]).startswith('list')\n"
        "loaded = heavy & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
