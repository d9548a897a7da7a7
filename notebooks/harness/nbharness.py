"""The bundled Kimi simulator behind the example notebooks, for CI and for demo mode.

The notebooks contain no simulator set-up: like any user's notebook they read their settings
from the environment. This module starts the simulator with the scripted replies of
``replies.json`` and computes the environment that points a kernel at it:

* ``KIMI_BASE_URL`` (the simulator's Moonshot dialect), ``MOONSHOT_API_KEY`` and
  ``KIMI_PROVIDER=moonshot``, what every notebook uses;
* for ``06-providers.ipynb``, the ``KIMI_DEMO_*_URL`` variables (the simulator speaking each
  provider's dialect) and the gateway keys the notebook looks for.

It is used three ways:

* ``python -m pytest --nbval notebooks/`` (``notebooks/conftest.py`` starts the simulator before any
  kernel starts, so nbval's kernels inherit the environment);
* ``python notebooks/harness/nbharness.py execute [NOTEBOOK ...]`` re-runs notebooks with nbclient
  against the simulator and saves them with their new outputs (after changing a notebook or
  ``replies.json``);
* ``python notebooks/harness/nbharness.py env BASE_URL KEY`` prints ``export`` lines for a simulator
  that is already running (``.ci/lab``'s demo mode).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent
SCRIPT = HERE / "replies.json"
TEST_KEY = "sk-test-simulator"
#: Variables a developer may have set that would change what the notebooks do or show.
CLEARED = ("KIMI_API_KEY", "KIMI_MODEL", "KIMI_ENDPOINT", "LOCAL_KIMI_URL", "KIMI_REPLAY")
CELL_TIMEOUT = 120


def notebook_env(base_url: str, key: str) -> dict[str, str]:
    """What a kernel needs to talk to the simulator at ``base_url`` (``http://host:port/v1``)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    return {
        "KIMI_BASE_URL": base_url,
        "MOONSHOT_API_KEY": key,
        "KIMI_PROVIDER": "moonshot",
        # 06-providers.ipynb: each provider's dialect, and the keys the notebook looks for.
        "KIMI_DEMO_OPENROUTER_URL": f"{root}/openrouter/v1",
        "KIMI_DEMO_WCODE_URL": f"{root}/openrouter/v1",
        "KIMI_DEMO_COMETAPI_URL": f"{root}/moonshot/v1",
        "KIMI_DEMO_CLOUDSWAY_URL": f"{root}/cloudsway/v1/ai/{{endpoint}}",
        "KIMI_DEMO_VLLM_URL": f"{root}/vllm/v1",
        "KIMI_DEMO_LLAMACPP_URL": f"{root}/llamacpp/v1",
        "OPENROUTER_API_KEY": key,
        "WCODE_API_KEY": key,
        "COMETAPI_KEY": key,
        "CLOUDSWAY_API_KEY": key,
        "CLOUDSWAY_ENDPOINT": "kimi-k2-5-demo",
        "LOCAL_KIMI_KEY": key,
    }


def test_env(base_url: str, key: str = TEST_KEY) -> dict[str, str]:
    """`notebook_env` plus ``PYTHONPATH``, so kernels import this checkout's kimi_jupyter
    whatever copy is installed (nbval and nbclient start kernels in the notebooks' folder)."""
    paths = [str(NOTEBOOKS.parent), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**notebook_env(base_url, key), "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def apply_env(env: Mapping[str, str], environ: Any = None) -> dict[str, str | None]:
    """Set ``env`` (and clear `CLEARED`) in ``environ``; return what to restore."""
    environ = os.environ if environ is None else environ
    saved = {name: environ.get(name) for name in (*env, *CLEARED)}
    for name in CLEARED:
        environ.pop(name, None)
    environ.update(env)
    return saved


def restore_env(saved: Mapping[str, str | None], environ: Any = None) -> None:
    environ = os.environ if environ is None else environ
    for name, value in saved.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


#: The Batch API's clock in the notebooks: an hour a second, so 08-rows.ipynb's batch of a few
#: hundred rows (minutes on the simulated clock) finishes in well under a second.
BATCH_SPEED = 3600.0


def start_simulator(key: str = TEST_KEY, chunk_delay: float = 0.0) -> Any:
    """A started simulator (Moonshot dialect at /v1) with the scripted replies loaded."""
    from kimi_jupyter.testing import KimiSimulator

    return KimiSimulator(api_key=key, script=SCRIPT, chunk_delay=chunk_delay, batch_speed=BATCH_SPEED).start()


def fresh_script(sim: Any) -> None:
    """Forget earlier requests (cached prefixes, records) so every notebook starts alike."""
    sim.reset()
    sim.load_script(SCRIPT)


@contextmanager
def simulated_environment(key: str = TEST_KEY) -> Iterator[Any]:
    """The simulator running and ``os.environ`` pointing at it, both undone afterwards."""
    sim = start_simulator(key)
    saved = apply_env(test_env(sim.base_url, key))
    try:
        yield sim
    finally:
        restore_env(saved)
        sim.stop()


def sanitize_rules() -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of ``sanitize.cfg``, read as nbval reads them."""
    text = (HERE / "sanitize.cfg").read_text(encoding="utf-8")
    return re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)


def tidy(nb: Any) -> None:
    """Keep only what a reader needs: no widget state (the live views are gone), no timings,
    and the sanitize rules applied (the simulator's port), so re-running changes nothing."""
    rules = sanitize_rules()

    def clean(text: str) -> str:
        for regex, replacement in rules:
            text = re.sub(regex, replacement, text)
        return text

    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = _merge_streams(cell.outputs)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = clean(output["text"])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = clean(value)


def _merge_streams(outputs: list[Any]) -> list[Any]:
    """One output per run of stdout (or stderr) text, however the kernel happened to flush it."""
    merged: list[Any] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            previous["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def execute(paths: list[Path]) -> None:
    """Run each notebook top to bottom against the simulator and save its outputs."""
    import nbformat
    from nbclient import NotebookClient

    with simulated_environment() as sim:
        for path in paths:
            fresh_script(sim)
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            client.execute()
            tidy(nb)
            nbformat.write(nb, path)
            print(f"executed {path.relative_to(NOTEBOOKS.parent)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python notebooks/harness/nbharness.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="re-run notebooks against the simulator and save their outputs")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    env = commands.add_parser("env", help="print export lines for a running simulator")
    env.add_argument("base_url", help="the simulator's base URL, http://127.0.0.1:PORT/v1")
    env.add_argument("key", help="the key the simulator accepts")
    args = parser.parse_args(argv)
    if args.command == "env":
        for name in CLEARED:
            print(f"unset {name}")
        for name, value in notebook_env(args.base_url, args.key).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    execute(paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
