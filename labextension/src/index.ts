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
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ToolbarButton } from '@jupyterlab/ui-components';

import { setNotebookTracker } from './codeactions';
import { activateFixButtons } from './fix';
import { activateNotebookLink } from './proposals';
import { activateProvenance } from './provenance';
import { kimiIcon } from './icon';
import { registryMarkdown } from './markdown';
import { KimiSidebar } from './panel';

export const OPEN_CHAT = 'kimi:open-chat';
export const TOGGLE_CHAT = 'kimi:toggle-chat';

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
    const markdown = registryMarkdown(rendermime);
    activateNotebookLink(tracker, markdown); // the kernel's notebook tools and proposals
    activateProvenance(tracker); // AI outputs' provenance copied into their cells' metadata
    const pickFiles = documents
      ? async (): Promise<string[]> => {
          const result = await FileDialog.getOpenFiles({
            manager: documents,
            title: 'Attach files to the Kimi chat'
          });
          return (result.value ?? []).filter(model => model.type !== 'directory').map(model => model.path);
        }
      : null;
    const sidebar = new KimiSidebar(tracker, markdown, pickFiles);
    sidebar.id = 'kimi-jupyter-sidebar';
    sidebar.title.icon = kimiIcon;
    sidebar.title.caption = 'Kimi chat (Ctrl/Cmd Alt K)';
    app.shell.add(sidebar, 'right', { rank: 650 });
    // Output actions: Ask Kimi about this output (every output), Fix with Kimi (errors).
    activateFixButtons(tracker, (panel, cellId) => {
      app.shell.activateById(sidebar.id);
      sidebar.askAboutOutput(panel, cellId);
    });
    restorer?.add(sidebar, 'kimi-jupyter-sidebar');

    app.commands.addCommand(OPEN_CHAT, {
      label: 'Kimi: Open chat',
      caption: 'Chat with Kimi about the current notebook',
      icon: kimiIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
        sidebar.focusInput();
        // From the command palette, the palette gives the focus back to the notebook right
        // after this returns (typed keys would then be notebook shortcuts): take it again.
        window.setTimeout(() => sidebar.focusInput(), 0);
      }
    });
    app.commands.addKeyBinding({
      command: OPEN_CHAT,
      keys: ['Accel Alt K'],
      selector: 'body'
    });
    palette?.addItem({ command: OPEN_CHAT, category: 'Kimi' });

    // Notebook 7 shows no tab bar for its right panel (JupyterLab shows the icon there): the
    // Kimi icon goes into each notebook's toolbar, next to the kernel, and toggles the chat.
    if (app.name === 'Jupyter Notebook') {
      const shell = app.shell as unknown as { collapseRight?: () => void };
      app.commands.addCommand(TOGGLE_CHAT, {
        label: 'Kimi: Show or hide the chat',
        caption: 'Kimi chat (Ctrl/Cmd Alt K)',
        icon: kimiIcon,
        execute: () => {
          if (sidebar.isVisible && shell.collapseRight) {
            shell.collapseRight();
          } else {
            void app.commands.execute(OPEN_CHAT);
          }
        }
      });
      app.docRegistry.addWidgetExtension('Notebook', {
        createNew: (panel: NotebookPanel) => {
          const button = new ToolbarButton({
            icon: kimiIcon,
            className: 'jp-kimi-toolbar-button',
            tooltip: 'Kimi chat (Ctrl/Cmd Alt K)',
            onClick: () => void app.commands.execute(TOGGLE_CHAT)
          });
          button.node.dataset.command = TOGGLE_CHAT;
          if (!panel.toolbar.insertAfter('spacer', 'kimi-chat', button)) {
            panel.toolbar.addItem('kimi-chat', button);
          }
          return button;
        }
      });
    }
  }
};

export default [sidebarPlugin];
