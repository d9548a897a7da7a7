import subprocess
import sys

import kimi_jupyter

HEAVY = ("pandas", "matplotlib", "PIL", "ipywidgets", "jupyterlab", "numpy", "polars", "httpx")


def test_import_is_light():
    code = f"import sys, kimi_jupyter; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_exported_names_are_pinned():
    assert set(kimi_jupyter.__all__) == {
        "ask", "aask", "Response", "ToolStep", "CodeBlock", "Settings", "resolve_settings", "get_session",
        "KimiClient", "AsyncKimiClient", "KimiError", "ReasoningDelta", "TextDelta", "ToolCallRequested",
        "ToolCallStarted", "ToolCallFinished", "ApprovalRequested", "ApprovalResolved", "Usage", "Retrying",
        "Notice", "Done", "Failed", "map", "batches", "resume", "cancel", "__version__", "load_ipython_extension", "unload_ipython_extension",
    }
    for name in kimi_jupyter.__all__:
        assert getattr(kimi_jupyter, name) is not None
