/**
 * What the buttons on an answer's code blocks do to the bound notebook.
 */
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

import { ICodeAction } from './view';

function setActiveSource(panel: NotebookPanel, code: string): void {
  const notebook = panel.content;
  if (notebook.activeCell && notebook.activeCell.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
}

export function insertBelow(panel: NotebookPanel, code: string): void {
  NotebookActions.insertBelow(panel.content);
  setActiveSource(panel, code);
}

export function codeActions(panel: () => NotebookPanel | null): ICodeAction[] {
  const withPanel = (fn: (target: NotebookPanel, code: string) => void) => (code: string) => {
    const target = panel();
    if (target && !target.isDisposed) {
      fn(target, code);
    }
  };
  return [
    {
      label: 'Insert below',
      short: 'Insert',
      title: 'Insert this code in a new cell below the active cell',
      run: withPanel(insertBelow)
    },
    {
      label: 'Replace active cell',
      short: 'Replace',
      title: "Replace the active cell's source with this code",
      run: withPanel(setActiveSource)
    },
    {
      label: 'Run',
      title: 'Insert this code below the active cell and run it',
      run: withPanel((target, code) => {
        insertBelow(target, code);
        void NotebookActions.run(target.content, target.sessionContext);
      })
    }
  ];
}

let tracker: INotebookTracker | null = null;

/** Set by the sidebar plugin, so saved answers in a notebook can offer cell actions too. */
export function setNotebookTracker(value: INotebookTracker): void {
  tracker = value;
}

/**
 * Buttons for code blocks of an answer shown as a cell's output (the MIME
 * renderer): they act on the cell whose output holds ``node``, so "Insert
 * below" puts the code right after the %%kimi cell that produced it. The cell
 * is looked up at click time: outputs render before they are attached.
 */
export function outputCodeActions(node: HTMLElement): ICodeAction[] {
  const placeBelowOwnCell = (): NotebookPanel | null => {
    const panel = tracker?.find(candidate => candidate.node.contains(node)) ?? null;
    if (!panel) {
      return null;
    }
    const index = panel.content.widgets.findIndex(cell => cell.node.contains(node));
    if (index < 0) {
      return null;
    }
    panel.content.activeCellIndex = index;
    return panel;
  };
  return [
    {
      label: 'Insert below',
      title: 'Insert this code in a new cell below this cell',
      run: code => {
        const panel = placeBelowOwnCell();
        if (panel) {
          insertBelow(panel, code);
        }
      }
    },
    {
      label: 'Run below',
      title: 'Insert this code in a new cell below this cell and run it',
      run: code => {
        const panel = placeBelowOwnCell();
        if (panel) {
          insertBelow(panel, code);
          void NotebookActions.run(panel.content, panel.sessionContext);
        }
      }
    }
  ];
}
