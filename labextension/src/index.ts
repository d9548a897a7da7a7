/**
 * kimi-jupyter: the Kimi chat sidebar (a palette command and Accel Alt K
 * open it; Accel Shift K is taken by the table of contents) bound to the current notebook's kernel.
 *
 * The MIME renderer for saved responses is the separate `mime.ts` extension.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileDialog } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { setNotebookTracker } from './codeactions';
import { kimiIcon } from './icon';
import { registryMarkdown } from './markdown';
import { KimiSidebar } from './panel';

export const OPEN_CHAT = 'kimi:open-chat';

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kimi-jupyter:sidebar',
  description: 'A Kimi chat bound to the active notebook’s kernel.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ICommandPalette, ILayoutRestorer, IDocumentManager],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    documents: IDocumentManager | null
  ) => {
    setNotebookTracker(tracker);
    const pickFiles = documents
      ? async (): Promise<string[]> => {
          const result = await FileDialog.getOpenFiles({
            manager: documents,
            title: 'Attach files to the Kimi chat'
          });
          return (result.value ?? []).filter(model => model.type !== 'directory').map(model => model.path);
        }
      : null;
    const sidebar = new KimiSidebar(tracker, registryMarkdown(rendermime), pickFiles);
    sidebar.id = 'kimi-jupyter-sidebar';
    sidebar.title.icon = kimiIcon;
    sidebar.title.caption = 'Kimi chat (Ctrl/Cmd Alt K)';
    app.shell.add(sidebar, 'right', { rank: 650 });
    restorer?.add(sidebar, 'kimi-jupyter-sidebar');

    app.commands.addCommand(OPEN_CHAT, {
      label: 'Kimi: Open chat',
      caption: 'Chat with Kimi about the current notebook',
      icon: kimiIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
        sidebar.focusInput();
      }
    });
    app.commands.addKeyBinding({
      command: OPEN_CHAT,
      keys: ['Accel Alt K'],
      selector: 'body'
    });
    palette?.addItem({ command: OPEN_CHAT, category: 'Kimi' });
  }
};

export default [sidebarPlugin];
