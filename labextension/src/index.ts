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
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { setNotebookTracker } from './codeactions';
import { activateFixButtons } from './fix';
import { activateNotebookLink } from './proposals';
import { kimiIcon } from './icon';
import { registryMarkdown } from './markdown';
import { KimiSidebar } from './panel';

export const OPEN_CHAT = 'kimi:open-chat';

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'kimi-jupyter:sidebar',
  description: 'A Kimi chat bound to the active notebook’s kernel.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    setNotebookTracker(tracker);
    activateNotebookLink(tracker); // the kernel's notebook tools and proposals
    activateFixButtons(tracker); // Fix with Kimi under error outputs
    const sidebar = new KimiSidebar(tracker, registryMarkdown(rendermime));
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
