"""JupyterLab in headless Chromium against the Kimi simulator.

Session fixtures: the simulator (in this process, so tests script its replies), a
``jupyter lab`` subprocess on 127.0.0.1 with a random token whose kernels talk to the
simulator, and one Chromium (Debian's /usr/bin/chromium, driven by Playwright's sync API).
Every test is skipped, with the reason, when Chromium, Playwright or the built extension is
missing; ``.ci/setup-browser`` and ``.ci/build-labextension`` install them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SIM_KEY = "sk-test-simulator"
# A kernel in which kimi_jupyter cannot be imported, as if it were not installed.
NOKIMI_LAUNCHER = """
import sys


class HideKimi:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "kimi_jupyter":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideKimi())
from ipykernel import kernelapp

kernelapp.launch_new_instance()
"""


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (run .ci/setup-browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (run .ci/setup-browser)"
    listed = subprocess.run([sys.executable, "-m", "jupyterlab.labextensions", "list"],
                            capture_output=True, text=True, timeout=60)
    if "kimi-jupyter" not in listed.stdout + listed.stderr:
        return "the kimi-jupyter lab extension is not built/installed (run .ci/build-labextension)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: JupyterLab in headless Chromium (needs .ci/setup-browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if here in Path(str(item.fspath)).parents]
    if not mine:
        return
    reason = _missing()
    for item in mine:
        item.add_marker(pytest.mark.browser)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _isolated_env() -> Iterator[None]:
    """Override the unit tests' autouse fixture: the lab server owns its environment."""
    yield


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sim() -> Iterator[Any]:
    from kimi_jupyter.testing import KimiSimulator

    with KimiSimulator(api_key=SIM_KEY, dialect="moonshot") as simulator:
        yield simulator


class Lab:
    def __init__(self, url: str, token: str, root: Path) -> None:
        self.url, self.token, self.root = url, token, root

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def write_notebook(self, name: str, cells: list[dict[str, Any]], kernel: str = "python3") -> Path:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
        for cell in cells:
            if cell.get("cell_type") == "code":
                outputs = [nbformat.from_dict(o) for o in cell.get("outputs", [])]
                nb.cells.append(nbformat.v4.new_code_cell(cell["source"], outputs=outputs,
                                                          execution_count=cell.get("execution_count")))
            else:
                nb.cells.append(nbformat.v4.new_markdown_cell(cell["source"]))
        path = self.root / name
        nbformat.write(nb, path)
        return path


@pytest.fixture(scope="session")
def lab(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if _missing():
        pytest.skip(_missing())
    with _server("lab", sim, tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="session")
def notebook7(sim: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Jupyter Notebook 7 (``jupyter notebook``), set up like the lab fixture."""
    if _missing():
        pytest.skip(_missing())
    try:
        from importlib.metadata import version

        major = int(version("notebook").split(".")[0])
    except Exception:
        major = 0
    if major < 7:
        pytest.skip("Notebook 7 is not installed (pip install 'notebook>=7', in the test extras)")
    with _server("notebook", sim, tmp_path_factory.mktemp("notebook7")) as server:
        yield server


@contextlib.contextmanager
def _server(app: str, sim: Any, base: Path) -> Iterator[Lab]:
    """``jupyter lab`` or ``jupyter notebook`` on 127.0.0.1 with a random token, its kernels
    pointed at the simulator. Its settings are the ones a user gets: the user settings folder
    starts empty, so only the defaults installed with the packages (and kimi-jupyter's
    overrides, e.g. no news toast) apply."""
    root = base / "root"
    root.mkdir()
    settings = base / "settings"
    kernels = base / "data" / "kernels"
    launcher = base / "nokimi_launcher.py"
    launcher.write_text(NOKIMI_LAUNCHER)
    _kernelspec(kernels / "nokimi", "Python 3 (no kimi_jupyter)", [str(launcher)], {})
    _kernelspec(kernels / "nokey", "Python 3 (no key)", ["-m", "ipykernel_launcher"], {"MOONSHOT_API_KEY": ""})
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "KIMI_BASE_URL": sim.base_url,
        "MOONSHOT_API_KEY": SIM_KEY,
        "KIMI_PROVIDER": "moonshot",
        "PYTHONPATH": str(REPO),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_PATH": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    env.pop("KIMI_API_KEY", None)
    log_path = base / f"{app}.log"
    log = log_path.open("w")
    prefix = "LabApp" if app == "lab" else "JupyterNotebookApp"
    cmd = [
        # The app's own module, not `-m jupyter lab`: jupyter_core looks the subcommand up on
        # PATH first, so another environment's jupyter-lab would serve its own extensions.
        sys.executable, "-m", "jupyterlab" if app == "lab" else "notebook", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--{prefix}.news_url=None", f"--{prefix}.expose_app_in_browser=True",
        f"--{prefix}.extension_manager=readonly", "--allow-root",
    ]
    process = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter {app} did not answer: {log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Lab(url, token, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
        shutil.copy(log_path, _artifacts() / f"jupyter-{app}.log")


def _kernelspec(path: Path, name: str, args: list[str], env: dict[str, str]) -> None:
    """A Python kernelspec: ``nokimi`` cannot import kimi_jupyter, ``nokey`` has no API key."""
    path.mkdir(parents=True)
    spec = {"argv": [sys.executable, *args, "-f", "{connection_file}"], "display_name": name,
            "language": "python", "env": env}
    (path / "kernel.json").write_text(json.dumps(spec))


def _artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop running while it is open,
    # which later tests that call asyncio.run() must not find.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        page.screenshot(path=str(_artifacts() / f"{request.node.name}-last.png"))
        context.close()
    kimi_errors = [e for e in errors if "kimi" in e.lower()]
    assert not kimi_errors, kimi_errors


@pytest.fixture
def shot() -> Any:
    def take(page: Any, name: str) -> Path:
        path = _artifacts() / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take
