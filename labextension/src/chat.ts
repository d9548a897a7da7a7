/**
 * The chat with one notebook's kernel: a status banner, the messages (each
 * answer is a TurnView fed by comm events), and the composer.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { UUID } from '@lumino/coreutils';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { activeCell, cellAttachment, fileAttachments, imageAttachment, PickFiles } from './attach';
import { BridgeStatus, KernelBridge } from './bridge';
import { codeActions } from './codeactions';
import { exportBar } from './export';
import { registerChatComm } from './proposals';
import { Composer, ISendOptions } from './composer';
import { Gauge } from './gauge';
import { Attachment, IRateLimits, KernelMessage, KimiEvent } from './protocol';
import { TurnState } from './turn';
import { button, MarkdownRenderer, TurnView } from './view';

const BUSY = 'Kernel busy - your message will be sent when it is idle.';
const NO_KEY =
  'No API key in this kernel. Set MOONSHOT_API_KEY before starting Jupyter (or in a .env ' +
  'file next to the notebook) and restart the kernel, or run %config Kimi.api_key = "sk-..." ' +
  'in a cell.';

interface ITurn {
  state: TurnState;
  view: TurnView;
}

export class ChatView extends Widget {
  readonly bridge: KernelBridge;

  constructor(
    readonly panel: NotebookPanel,
    private markdown: MarkdownRenderer,
    pickFiles: PickFiles | null = null
  ) {
    super();
    this.addClass('jp-kimi-chat');
    this.bridge = new KernelBridge(panel.sessionContext);
    this.bridge.statusChanged.connect(this.refreshBanner, this);
    this.bridge.received.connect(this.onMessage, this);
    panel.sessionContext.statusChanged.connect(this.refreshBanner, this);
    panel.sessionContext.statusChanged.connect(this.onKernelStatus, this);
    panel.sessionContext.kernelChanged.connect(this.onKernelChanged, this);
    this.composer = new Composer({
      onSend: (prompt, attachments, options) => void this.ask(prompt, attachments, options),
      onStop: () => void this.bridge.interrupt(),
      onAttachCell: () => {
        const cell = activeCell(this.panel);
        return cell ? cellAttachment(cell) : 'Select a cell in the notebook first.';
      },
      onAttachImage: () => {
        const cell = activeCell(this.panel);
        const image = cell ? imageAttachment(cell) : null;
        return (
          image ?? 'The active cell shows no image: select the cell that displayed the plot.'
        );
      },
      onAttachFile: pickFiles ? () => fileAttachments(this.panel, pickFiles) : null,
      onReset: () => void this.reset(),
      storageKey: () => this.panel.context.path
    });
    this.banner.className = 'jp-kimi-banner';
    this.messages.className = 'jp-kimi-messages';
    this.showEmpty();
    registerChatComm(panel, () => this.bridge.commId);
    this.node.append(this.banner, this.messages, exportBar(this.bridge), this.gauge.node, this.composer.node);
    this.refreshBanner();
  }

  /** "Ask Kimi about this output": the cell's image (a plot) or its text outputs, attached. */
  askAboutOutput(cellId: string): void {
    const cell = this.panel.content.widgets.find(widget => widget.model.id === cellId);
    if (!cell) {
      this.composer.say('That cell is not in the notebook any more.');
      return;
    }
    const image = imageAttachment(cell);
    this.composer.attachWith(
      image ?? cellAttachment(cell),
      image ? 'What does this plot show?' : 'What does this output show?'
    );
  }

  focusInput(): void {
    this.composer.focus();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.bridge.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.bridge.connect();
  }

  private async ask(prompt: string, attachments: Attachment[], options: ISendOptions): Promise<void> {
    const id = UUID.uuid4();
    const turn = this.addTurn(id, prompt, attachments);
    const kernelBusy = this.bridge.kernel?.status === 'busy';
    turn.state.phase = 'queued';
    turn.state.note = kernelBusy ? BUSY : '';
    turn.state.version++;
    turn.view.update(turn.state);
    const sent = await this.bridge.send({
      action: 'ask',
      request_id: id,
      prompt,
      attachments,
      options: {
        ...(options.agent ? { agent: true } : {}),
        ...(options.thinking !== undefined ? { thinking: options.thinking } : {}),
        ...(options.model !== undefined ? { model: options.model } : {}),
        ...(options.effort !== undefined ? { effort: options.effort } : {}),
        ...(options.prefill !== undefined ? { prefill: options.prefill } : {})
      }
    });
    if (!sent) {
      turn.state.note = '';
      turn.state.feed({ type: 'Failed', error: this.statusText(), kind: 'NotConnected' });
      turn.state.finished = true;
      turn.view.update(turn.state);
    }
  }

  private addTurn(id: string, prompt: string, attachments: Attachment[]): ITurn {
    this.messages.querySelector('.jp-kimi-empty')?.remove();
    const user = document.createElement('div');
    user.className = 'jp-kimi-user';
    const text = document.createElement('div');
    text.className = 'jp-kimi-user-text';
    text.textContent = prompt;
    user.appendChild(text);
    for (const attachment of attachments) {
      const chip = document.createElement('span');
      chip.className = 'jp-kimi-chip';
      chip.textContent = attachment.label ?? attachment.kind;
      user.appendChild(chip);
    }
    const state = new TurnState();
    const hello = this.bridge.status.kind === 'ready' ? this.bridge.status.hello : null;
    state.meta = { model: hello?.model, provider: hello?.provider, thinking: hello?.thinking };
    const view = new TurnView({
      renderMarkdown: this.markdown,
      codeActions: codeActions(() => this.panel),
      onApprove: (stepId, approved) =>
        void this.bridge.send({ action: 'approve', id: stepId, approved })
    });
    this.messages.append(user, view.node);
    const turn = { state, view };
    this.turns.set(id, turn);
    this.scrollDown(true);
    return turn;
  }

  private onMessage(_: KernelBridge, message: KernelMessage): void {
    if (message.type === 'reset') {
      this.gauge.clear();
      this.turns.clear();
      this.messages.replaceChildren();
      this.showEmpty();
      return;
    }
    if (message.type === 'hello') {
      return; // the banner follows the bridge's status
    }
    if (message.type === 'gauge') {
      this.gauge.update(message);
      return;
    }
    if (message.type === 'models') {
      this.composer.setModels(message.current, message.models, message.error, message.efforts ?? null);
      return;
    }
    const turn = message.request_id ? this.turns.get(message.request_id) : undefined;
    if (!turn) {
      if (message.type === 'error') {
        this.composer.say(message.message);
      }
      return;
    }
    const stick = this.nearBottom();
    if (turn.state.note === BUSY) {
      turn.state.note = ''; // the kernel got to it
    }
    switch (message.type) {
      case 'start':
        turn.state.meta = message.meta;
        turn.state.phase = 'waiting';
        turn.state.note = '';
        turn.state.version++;
        this.running = message.request_id;
        break;
      case 'event':
        turn.state.feed(message.event as KimiEvent);
        break;
      case 'done':
        turn.state.finish(message.response, message.meta);
        this.rateLimits = message.rate_limits ?? null;
        if (this.running === message.request_id) {
          this.running = null;
        }
        // The gauge: handled once this turn's handler returns, so the ledger counts it.
        void this.bridge.send({ action: 'gauge' }).catch(() => undefined);
        break;
      case 'error':
        turn.state.feed({ type: 'Failed', error: message.message });
        turn.state.finished = true;
        break;
    }
    turn.view.update(turn.state);
    this.composer.setRunning(this.running !== null);
    this.refreshBanner();
    this.scrollDown(stick);
  }

  private onKernelStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting') {
      this.kernelLost('The kernel restarted');
    } else if (status === 'dead') {
      this.kernelLost('The kernel died');
    }
  }

  private onKernelChanged(): void {
    this.kernelLost('The notebook switched kernels');
  }

  /**
   * The kernel that held this chat's conversation is gone: end the turns it was
   * answering (nothing more will arrive for them) and say that the conversation
   * starts over, because the new kernel remembers none of it.
   */
  private kernelLost(what: string): void {
    for (const turn of this.turns.values()) {
      if (turn.state.finished) {
        continue;
      }
      const partial = turn.state.text.length > 0 || turn.state.reasoning.length > 0;
      turn.state.note = '';
      turn.state.feed({
        type: 'Failed',
        error: `${what} before Kimi finished${partial ? '; the partial answer above is kept' : ''}. Ask again.`,
        kind: 'KernelRestarted',
        partial
      });
      turn.state.finished = true;
      turn.view.update(turn.state);
    }
    this.running = null;
    this.composer.setRunning(false);
    const last = this.messages.lastElementChild;
    if (this.turns.size && !last?.classList.contains('jp-kimi-divider')) {
      const divider = document.createElement('div');
      divider.className = 'jp-kimi-divider';
      divider.textContent = `${what}: a new conversation starts here (Kimi will not see the messages above).`;
      this.messages.append(divider);
      this.scrollDown(true);
    }
  }

  private async reset(): Promise<void> {
    this.turns.clear();
    this.messages.replaceChildren();
    this.showEmpty();
    if (this.bridge.status.kind === 'ready') {
      await this.bridge.send({ action: 'reset' });
    }
  }

  private refreshBanner(): void {
    const status = this.bridge.status;
    if (status.kind === 'ready') {
      this.composer.setThinkingDefault(status.hello.thinking !== false);
      if (!this.modelsAsked && status.hello.has_key) {
        // Once per connection: the provider's model list for the picker.
        this.modelsAsked = true;
        this.composer.setModels(status.hello.model ?? null, [], null);
        void this.bridge.send({ action: 'models' });
      }
    } else {
      this.modelsAsked = false;
    }
    const level =
      status.kind === 'not-installed' || status.kind === 'error'
        ? 'error'
        : status.kind === 'no-kernel' || (status.kind === 'ready' && !status.hello.has_key)
          ? 'warn'
          : 'info';
    const parts: (string | HTMLElement)[] = [this.statusText()];
    if (status.kind === 'error' || status.kind === 'not-installed') {
      parts.push(' ', button('Retry', 'Connect to the kernel again', () => void this.bridge.connect()));
    } else if (status.kind === 'ready' && !status.hello.has_key) {
      parts.push(
        ' ',
        button('Check again', 'Ask the kernel again', () => void this.bridge.send({ action: 'hello' }))
      );
    }
    const busy = this.bridge.kernel?.status === 'busy' && this.running === null;
    const waiting = [...this.turns.values()].some(t => t.state.phase === 'queued');
    if (busy && status.kind !== 'no-kernel') {
      const line = document.createElement('div');
      line.className = 'jp-kimi-busy';
      line.textContent = waiting || status.kind === 'ready' ? BUSY : 'Kernel busy.';
      parts.push(line);
    }
    if (this.rateLimits?.low && status.kind === 'ready') {
      const line = document.createElement('div');
      line.className = 'jp-kimi-ratelimit';
      line.textContent = `Rate limit running low: ${this.rateLimits.text}.`;
      parts.push(line);
    }
    this.banner.replaceChildren(...parts);
    this.banner.dataset.level = level;
    this.banner.dataset.status = status.kind;
    this.composer.setEnabled(status.kind !== 'no-kernel' && status.kind !== 'not-installed');
  }

  private statusText(): string {
    const status: BridgeStatus = this.bridge.status;
    switch (status.kind) {
      case 'no-kernel':
        return 'This notebook has no running kernel. Start or select one (Kernel menu) to chat with Kimi.';
      case 'connecting':
        return 'Connecting to the kernel…';
      case 'loading':
        return 'Loading kimi_jupyter in the kernel…';
      case 'not-installed':
        return status.detail;
      case 'error':
        return status.message;
      case 'ready': {
        const hello = status.hello;
        if (!hello.has_key) {
          return NO_KEY;
        }
        if (hello.error) {
          return hello.error;
        }
        // Thinking is the composer's Think box; each answer's header says which it used.
        return `${hello.model ?? 'kimi'} (${hello.provider ?? '?'})`;
      }
    }
  }

  private showEmpty(): void {
    const empty = document.createElement('div');
    empty.className = 'jp-kimi-empty';
    empty.textContent =
      'Ask about this notebook. The chat runs in its kernel, so {name} inserts a variable ' +
      '(e.g. "What columns does {df} have?"). Attach the active cell, its plot or a file below.';
    this.messages.replaceChildren(empty);
  }

  private nearBottom(): boolean {
    const m = this.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  private scrollDown(force: boolean): void {
    if (force) {
      requestAnimationFrame(() => (this.messages.scrollTop = this.messages.scrollHeight));
    }
  }

  private composer: Composer;
  private banner = document.createElement('div');
  private rateLimits: IRateLimits | null = null;
  private messages = document.createElement('div');
  private turns = new Map<string, ITurn>();
  private running: string | null = null;
  private modelsAsked = false;
  private gauge = new Gauge();
}
