/**
 * Output actions: under every code cell with an output, "Ask Kimi about this
 * output" (the sidebar opens with the cell's plot, or its text outputs,
 * attached), and "Fix with Kimi" beside it when the output is an error.
 *
 * "Fix with Kimi": a button under every code cell that shows an error.
 *
 * A click runs `kimi_jupyter.fix.fix_from_frontend(<cell id>)` in the kernel
 * (silently: no cell, no history), with the cell's id as the request's
 * `cellId`, so the kernel's notebook link (`proposals.ts`) finds this notebook.
 * The kernel sends Kimi the cell, its trimmed traceback, the variables it uses
 * and the cells that defined them, and shows the answer as an edit proposal
 * of this cell; Accept then offers to run the cell again.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

const BAR = 'jp-kimi-fix-bar';
const KIMI_MIME = 'application/vnd.kimi.response+json';

/** Ask about an output: open the chat of ``panel`` with cell ``cellId``'s output attached. */
export type AskAboutOutput = (panel: NotebookPanel, cellId: string) => void;

/** True when the cell shows something besides Kimi's own answers. */
function hasOutput(model: any): boolean {
  const outputs = model?.outputs;
  for (let i = 0; outputs && i < outputs.length; i++) {
    const output = outputs.get(i);
    const data = output.data ?? {};
    if (output.type !== 'display_data' || !(KIMI_MIME in data)) {
      return true;
    }
  }
  return false;
}

function hasError(model: any): boolean {
  const outputs = model?.outputs;
  if (!outputs) {
    return false;
  }
  for (let i = 0; i < outputs.length; i++) {
    if (outputs.get(i).type === 'error') {
      return true;
    }
  }
  return false;
}

async function fix(panel: NotebookPanel, cellId: string, button: HTMLButtonElement, status: HTMLElement): Promise<void> {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    status.textContent = 'No kernel: start one first.';
    return;
  }
  button.disabled = true;
  button.textContent = 'Asking Kimi…';
  status.textContent = '';
  try {
    const future = kernel.requestExecute(
      {
        code: `__import__('kimi_jupyter.fix', fromlist=['fix']).fix_from_frontend(${JSON.stringify(cellId)})`,
        silent: true,
        store_history: false,
        allow_stdin: false,
        stop_on_error: false
      },
      true,
      { cellId }
    );
    const reply = await future.done;
    const content = reply.content as any;
    if (content.status === 'error') {
      status.textContent =
        content.ename === 'ModuleNotFoundError'
          ? 'kimi_jupyter is not installed in this kernel: pip install kimi-jupyter'
          : `Fix with Kimi failed: ${content.ename}: ${content.evalue}`;
    }
  } catch (error) {
    status.textContent = `Fix with Kimi failed: ${String(error)}`;
  } finally {
    button.disabled = false;
    button.textContent = 'Fix with Kimi';
  }
}

function scan(panel: NotebookPanel, ask: AskAboutOutput | null): void {
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') {
      continue;
    }
    const wrapper = cell.node.querySelector('.jp-Cell-outputWrapper');
    const bar = cell.node.querySelector(`.${BAR}`);
    const error = hasError(cell.model);
    const shown = ask !== null && hasOutput(cell.model);
    const askBar = cell.node.querySelector('.jp-kimi-output-actions');
    if (!shown && askBar) {
      askBar.remove();
    } else if (shown && !askBar && wrapper && ask) {
      const node = document.createElement('div');
      node.className = 'jp-kimi-output-actions';
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'jp-kimi-button jp-kimi-ask-output';
      button.textContent = 'Ask Kimi about this output';
      button.title = 'Open the Kimi chat with this output attached (a plot as an image, text and tables as text)';
      button.addEventListener('click', event => {
        event.preventDefault();
        ask(panel, cell.model.id);
      });
      node.append(button);
      wrapper.appendChild(node);
    }
    if (!error && bar) {
      bar.remove();
    } else if (error && !bar && wrapper) {
      const node = document.createElement('div');
      node.className = BAR;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'jp-kimi-button jp-kimi-fix-button';
      button.textContent = 'Fix with Kimi';
      button.title = 'Ask Kimi for a minimal fix of this cell, shown as a diff to accept or reject';
      const status = document.createElement('span');
      status.className = 'jp-kimi-fix-status';
      button.addEventListener('click', event => {
        event.preventDefault();
        void fix(panel, cell.model.id, button, status);
      });
      node.append(button, status);
      wrapper.appendChild(node);
    }
  }
}

/** Watch every notebook and keep a Fix with Kimi button under each error output. */
export function activateFixButtons(tracker: INotebookTracker, ask: AskAboutOutput | null = null): void {
  const watch = (panel: NotebookPanel) => {
    let queued = false;
    const schedule = () => {
      if (!queued) {
        queued = true;
        requestAnimationFrame(() => {
          queued = false;
          if (!panel.isDisposed) {
            scan(panel, ask);
          }
        });
      }
    };
    const observer = new MutationObserver(schedule);
    observer.observe(panel.content.node, { childList: true, subtree: true });
    panel.disposed.connect(() => observer.disconnect());
    schedule();
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}
