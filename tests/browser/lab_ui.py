"""Small JupyterLab helpers for the browser tests (Playwright sync API).

Notebook set-up (running a cell, saving) goes through JupyterLab's own commands via
``window.jupyterapp`` (the server runs with ``expose_app_in_browser``); what is under test
(the sidebar, the outputs) is driven and checked through the page like a user would.
"""

from __future__ import annotations

from typing import Any

KERNEL_STATUS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? k.status : null;
}"""


def open_notebook(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    wait_kernel_idle(page, timeout=60_000)


def wait_kernel_idle(page: Any, timeout: int = 30_000) -> None:
    page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=timeout)


def run_cell(page: Any, index: int, timeout: int = 30_000) -> None:
    """Run cell ``index`` and wait until it has an execution count and the kernel is idle."""
    page.evaluate(
        """async (index) => {
          const app = window.jupyterapp;
          const panel = app.shell.currentWidget;
          panel.content.activeCellIndex = index;
          panel.content.deselectAll();
          await app.commands.execute('notebook:run-cell');
        }""",
        index,
    )
    page.wait_for_function(
        """(index) => {
          const panel = window.jupyterapp.shell.currentWidget;
          const cell = panel.content.widgets[index];
          return cell && cell.model.executionCount !== null;
        }""",
        arg=index,
        timeout=timeout,
    )
    wait_kernel_idle(page, timeout)


def start_cell(page: Any, index: int) -> None:
    """Run cell ``index`` without waiting for it (to watch it stream)."""
    page.evaluate(
        """(index) => {
          const app = window.jupyterapp;
          const panel = app.shell.currentWidget;
          panel.content.activeCellIndex = index;
          panel.content.deselectAll();
          void app.commands.execute('notebook:run-cell');
        }""",
        index,
    )


def cell_sources(page: Any) -> list[str]:
    return page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .map(c => c.model.sharedModel.getSource())"""
    )


def save(page: Any) -> None:
    page.evaluate("async () => { await window.jupyterapp.commands.execute('docmanager:save'); }")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=15_000
    )


def output_area(page: Any, index: int) -> Any:
    return page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index).locator(".jp-Cell-outputArea")
