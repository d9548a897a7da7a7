/**
 * What the buttons on an answer's code blocks do to the bound notebook.
 */
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';

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
      title: 'Insert this code in a new cell below the active cell',
      run: withPanel(insertBelow)
    },
    {
      label: 'Replace active cell',
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
