"""Run in a fresh interpreter by ``bench.loadtime``: start IPython, optionally load an extension.

Prints one JSON line: seconds to create the shell, and the wall and CPU seconds
``%load_ext NAME`` took.
Standalone on purpose (imports nothing from the repo), so a peer's venv can run it too.
"""

import json
import sys
import time

t0 = time.perf_counter()
from IPython.terminal.interactiveshell import TerminalInteractiveShell  # noqa: E402

shell = TerminalInteractiveShell.instance()
t1 = time.perf_counter()
c1 = time.process_time()
error = None
if len(sys.argv) > 1:
    before = set(shell.magics_manager.magics["cell"]) | set(shell.magics_manager.magics["line"])
    try:
        shell.run_line_magic("load_ext", sys.argv[1])
    except Exception as exc:  # reported to the parent, which marks the row unavailable
        error = f"{type(exc).__name__}: {exc}"
    after = set(shell.magics_manager.magics["cell"]) | set(shell.magics_manager.magics["line"])
    if error is None and not (after - before):
        error = "the extension registered no magics"
t2 = time.perf_counter()
c2 = time.process_time()
print(json.dumps({"shell": t1 - t0, "ext": t2 - t1, "ext_cpu": c2 - c1, "error": error}))
