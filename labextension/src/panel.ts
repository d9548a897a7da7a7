/**
 * The sidebar: follows the current notebook (INotebookTracker), shows its
 * name, and keeps one ChatView per notebook so switching tabs keeps each chat.
 */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { PickFiles } from './attach';
import { ChatView } from './chat';
import { kimiIcon } from './icon';
import { MarkdownRenderer } from './view';

export class KimiSidebar extends Panel {
  constructor(
    private tracker: INotebookTracker,
    private markdown: MarkdownRenderer,
    private pickFiles: PickFiles | null = null
  ) {
    super();
    this.addClass('jp-kimi-sidebar');
    const header = new Widget();
    header.addClass('jp-kimi-header');
    const icon = kimiIcon.element({ className: 'jp-kimi-header-icon' });
    const title = document.createElement('span');
    title.className = 'jp-kimi-title';
    title.textContent = 'Kimi';
    this.notebookName.className = 'jp-kimi-notebook';
    header.node.append(icon, title, this.notebookName);
    this.addWidget(header);
    this.placeholder.addClass('jp-kimi-placeholder');
    this.placeholder.node.textContent =
      'Open a notebook to chat with Kimi. The chat runs in the notebook’s kernel and can see its variables.';
    this.addWidget(this.placeholder);
    tracker.currentChanged.connect((_, panel) => this.bind(panel), this);
    this.bind(tracker.currentWidget);
  }

  /** Show the chat of ``panel`` with the output of cell ``cellId`` attached. */
  askAboutOutput(panel: NotebookPanel, cellId: string): void {
    this.bind(panel);
    this.current?.askAboutOutput(cellId);
  }

  focusInput(): void {
    this.current?.focusInput();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.bind(this.tracker.currentWidget);
  }

  private bind(panel: NotebookPanel | null): void {
    for (const chat of this.chats.values()) {
      if (chat.panel !== panel) {
        chat.hide();
      }
    }
    this.current = panel ? this.chatFor(panel) : null;
    this.placeholder.setHidden(this.current !== null);
    this.current?.show();
    this.notebookName.textContent = panel ? panel.context.localPath.split('/').pop() ?? '' : '';
    this.notebookName.title = panel ? panel.context.path : '';
  }

  private chatFor(panel: NotebookPanel): ChatView {
    let chat = this.chats.get(panel);
    if (!chat) {
      chat = new ChatView(panel, this.markdown, this.pickFiles);
      chat.hide();
      this.chats.set(panel, chat);
      this.addWidget(chat);
      panel.context.pathChanged.connect(() => {
        if (this.current === chat) {
          this.bind(panel);
        }
      }, this);
      panel.disposed.connect(() => {
        this.chats.delete(panel);
        chat?.dispose();
        if (this.current === chat) {
          this.bind(this.tracker.currentWidget);
        }
      }, this);
    }
    return chat;
  }

  private chats = new Map<NotebookPanel, ChatView>();
  private current: ChatView | null = null;
  private notebookName = document.createElement('span');
  private placeholder = new Widget();
}
