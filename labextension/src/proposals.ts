/**
 * The notebook's side of the `kimi_jupyter.notebook` comm: the kernel reads
 * this notebook's cells through it and shows edit proposals, which the user
 * accepts or rejects here (protocol: `kimi_jupyter/agent/frontend.py`).
 *
 * Every notebook registers the comm target on its kernel connection (this
 * loads nothing into the kernel). The kernel opens the comm when an agent turn
 * or `%kimi fix` starts; only the notebook that holds the running cell, or
 * whose sidebar chat runs the turn, answers.
 *
 * A proposal card sits at its cell: attached under the target cell (the cell
 * it edits, or the one a new cell goes after), scrolled into view, in the
 * notebook's flow so it never covers a cell. It names the target, shows the
 * explanation as Markdown through the same untrusted renderer as the chat
 * (never live model HTML), the diff (added and removed lines highlighted,
 * drawn as text), Accept / Reject with an optional note for Kimi (keys: A
 * accepts, R rejects while the card has the focus), and Accept all / Reject
 * all for several.
 *
 * A single-step proposal (`%kimi fix`, Fix with Kimi) arrives with
 * `wait: false`: the kernel is not waiting, the cell that asked has already
 * ended; the decision goes back on the same comm whenever the user makes it. Accepting re-reads the cell: if its source
 * changed since the proposal, the kernel sends a fresh diff instead of the
 * edit overwriting the change. Everything accepted by one click is applied in
 * one notebook transaction, so one Undo Cell Operation (Z in command mode)
 * reverts it.
 */
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';

import { keepOnMainShell } from './bridge';
import { MarkdownRenderer } from './view';

export const NOTEBOOK_TARGET = 'kimi_jupyter.notebook';
const OUTPUT_CHARS = 20000;
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

export interface IDiffRow {
  op: '@' | '+' | '-' | ' ';
  text: string;
}

export interface IProposal {
  pid: string;
  kind: 'edit' | 'insert';
  index: number;
  cell_id: string | null;
  cell_type: string;
  old: string;
  new: string;
  target: string;
  diff: IDiffRow[];
  changed: boolean;
  explanation: string;
  status: string;
}

/** The sidebar chat's comm id per notebook, so a sidebar turn finds its notebook. */
const chatComms = new WeakMap<NotebookPanel, () => string | null>();

export function registerChatComm(panel: NotebookPanel, commId: () => string | null): void {
  chatComms.set(panel, commId);
}

const registered = new WeakSet<Kernel.IKernelConnection>();
let renderMarkdown: MarkdownRenderer | null = null;

/** Register the comm target on every notebook's kernel, now and after kernel changes. */
export function activateNotebookLink(tracker: INotebookTracker, markdown: MarkdownRenderer | null = null): void {
  renderMarkdown = markdown;
  const watch = (panel: NotebookPanel) => {
    const register = () => {
      const kernel = panel.sessionContext.session?.kernel;
      if (!kernel || registered.has(kernel)) {
        return;
      }
      registered.add(kernel);
      kernel.registerCommTarget(NOTEBOOK_TARGET, (comm, msg) => open(panel, comm, msg));
    };
    panel.sessionContext.kernelChanged.connect(register);
    void panel.sessionContext.ready.then(register);
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}

function cellIndex(panel: NotebookPanel, id: string | null): number {
  const cells = panel.content.model?.sharedModel.cells ?? [];
  return id ? cells.findIndex(cell => cell.getId() === id) : -1;
}

function isMine(panel: NotebookPanel, data: JSONObject): boolean {
  const chat = typeof data.chat_comm_id === 'string' ? data.chat_comm_id : null;
  if (chat) {
    return chatComms.get(panel)?.() === chat;
  }
  const cell = typeof data.cell_id === 'string' ? data.cell_id : null;
  return !!cell && cellIndex(panel, cell) >= 0;
}

function open(panel: NotebookPanel, comm: Kernel.IComm, msg: KernelMessage.ICommOpenMsg): void {
  const data = (msg.content.data ?? {}) as JSONObject;
  if (panel.isDisposed || !isMine(panel, data)) {
    return; // another notebook of this kernel answers
  }
  keepOnMainShell(comm);
  const link = new NotebookLink(panel, comm);
  comm.onMsg = message => link.handle(message.content.data as JSONObject);
  comm.onClose = () => link.closed();
  link.send({ type: 'hello', path: panel.context.path, cells: panel.content.model?.cells.length ?? 0 });
}

/** A cell's outputs as text (what the model reads), cut to a bound. */
function outputsText(outputs: any[]): { text: string; error: boolean } {
  const parts: string[] = [];
  let error = false;
  for (const output of outputs) {
    if (output.output_type === 'stream') {
      parts.push(String(Array.isArray(output.text) ? output.text.join('') : output.text ?? ''));
    } else if (output.output_type === 'error') {
      error = true;
      const trace = Array.isArray(output.traceback) ? output.traceback.join('\n') : '';
      parts.push((trace || `${output.ename}: ${output.evalue}`).replace(ANSI, ''));
    } else if (output.data && output.data['text/plain'] !== undefined) {
      const plain = output.data['text/plain'];
      parts.push(String(Array.isArray(plain) ? plain.join('') : plain));
    } else if (output.data) {
      parts.push(`[${Object.keys(output.data).join(', ')}]`);
    }
  }
  const text = parts.join('\n');
  return { text: text.length > OUTPUT_CHARS ? text.slice(0, OUTPUT_CHARS) : text, error };
}

class NotebookLink {
  constructor(readonly panel: NotebookPanel, private comm: Kernel.IComm) {
    // A closed notebook can decide nothing: tell the kernel, so it stops waiting.
    panel.disposed.connect(() => {
      if (!comm.isDisposed) {
        try {
          comm.close();
        } catch (error) {
          comm.dispose();
        }
      }
    });
  }

  send(message: JSONObject): void {
    if (!this.comm.isDisposed) {
      this.comm.send(message);
    }
  }

  handle(data: JSONObject): void {
    const id = String(data.id ?? '');
    switch (data.action) {
      case 'snapshot':
        this.send({ type: 'snapshot', id, cells: this.snapshot() });
        break;
      case 'propose': {
        const card = new ProposalCard(this.panel, id, String(data.title ?? ''),
          (data.proposals as unknown as IProposal[]) ?? [], message => this.send(message));
        this.cards.set(id, card);
        if (data.auto === true) {
          card.applyWithoutAsking(); // the user's Kimi.auto_apply_edits
        } else {
          card.focus();
        }
        break;
      }
      case 'update':
        this.cards.get(id)?.update(data.proposal as unknown as IProposal);
        break;
      case 'end':
        this.cards.get(id)?.end(String(data.reason ?? ''));
        this.cards.delete(id);
        break;
      case 'message':
        new ProposalCard(this.panel, id, String(data.title ?? ''), [], () => undefined, String(data.text ?? ''));
        break;
    }
  }

  closed(): void {
    for (const card of this.cards.values()) {
      card.end('closed');
    }
    this.cards.clear();
  }

  private snapshot(): JSONObject[] {
    const model = this.panel.content.model;
    if (!model) {
      return [];
    }
    return model.sharedModel.cells.map(cell => {
      const json = cell.toJSON() as any;
      const outputs = outputsText(json.outputs ?? []);
      return {
        id: cell.getId(),
        cell_type: cell.cell_type,
        source: cell.getSource(),
        execution_count: json.execution_count ?? null,
        outputs: outputs.text,
        has_error: outputs.error
      };
    });
  }

  private cards = new Map<string, ProposalCard>();
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function actionButton(label: string, title: string, onClick: () => void, kind = ''): HTMLButtonElement {
  const node = el('button', `jp-kimi-button jp-kimi-proposal-button ${kind}`.trim(), label);
  node.type = 'button';
  node.title = title;
  node.addEventListener('click', event => {
    event.preventDefault();
    onClick();
  });
  return node;
}

/** Start a new undo step (the notebook's Yjs undo manager merges changes made close together). */
function stopCapturing(shared: unknown): void {
  (shared as { undoManager?: { stopCapturing?: () => void } }).undoManager?.stopCapturing?.();
}

/** The diff rows as DOM (text only). */
export function renderDiff(rows: IDiffRow[]): HTMLElement {
  const pre = el('pre', 'jp-kimi-diff');
  for (const row of rows) {
    const line = el('div', 'jp-kimi-diff-line', row.op === '@' ? row.text : `${row.op} ${row.text}`);
    line.dataset.op = row.op === '+' ? 'add' : row.op === '-' ? 'del' : row.op === '@' ? 'hunk' : 'same';
    pre.appendChild(line);
  }
  if (!rows.length) {
    pre.appendChild(el('div', 'jp-kimi-diff-line', '(no change)'));
  }
  return pre;
}

interface IItem {
  proposal: IProposal;
  node: HTMLElement;
  note: HTMLTextAreaElement;
  state: 'pending' | 'checking' | 'accepted' | 'rejected' | 'failed' | 'expired';
}

/** One request's proposals over the notebook, with their buttons. */
export class ProposalCard {
  readonly node = el('div', 'jp-kimi-proposals');

  constructor(
    private panel: NotebookPanel,
    readonly id: string,
    title: string,
    proposals: IProposal[],
    private send: (message: JSONObject) => void,
    message = ''
  ) {
    const head = el('div', 'jp-kimi-proposals-head');
    const count = proposals.length;
    const what = count === 1 ? 'a change' : `${count} changes`;
    head.append(el('span', 'jp-kimi-proposals-title', title ? `${title}: ${what}` : `Kimi proposes ${what}`));
    this.closeButton = actionButton('×', 'Close', () => this.node.remove(), 'jp-kimi-proposals-close');
    this.closeButton.hidden = count > 0;
    head.append(this.closeButton);
    this.node.append(head);
    if (message) {
      this.node.append(el('div', 'jp-kimi-proposal-explanation', message));
    }
    const explanation = proposals.find(p => p.explanation)?.explanation;
    if (explanation) {
      const host = el('div', 'jp-kimi-proposal-explanation', explanation);
      if (renderMarkdown) {
        host.classList.add('jp-kimi-markdown');
        void renderMarkdown(host, explanation).catch(() => {
          host.textContent = explanation; // the plain text is shown when rendering fails
        });
      }
      this.node.append(host);
    }
    for (const proposal of proposals) {
      const item: IItem = { proposal, node: el('div', 'jp-kimi-proposal'), note: el('textarea', 'jp-kimi-proposal-note'), state: 'pending' };
      item.note.placeholder = 'Optional note for Kimi (sent with Reject)';
      item.note.rows = 1;
      this.items.push(item);
      this.node.append(item.node);
      this.draw(item);
    }
    if (count > 1) {
      this.bulk.append(
        actionButton('Accept all', 'Apply every pending change (one undo step)', () => this.accept(this.pending()), 'jp-mod-accept'),
        actionButton('Reject all', 'Reject every pending change', () => this.reject(this.pending()), 'jp-mod-reject')
      );
      this.node.append(this.bulk);
    }
    // Keys for the card itself, not the notebook's command-mode shortcuts.
    this.node.tabIndex = 0;
    this.node.setAttribute('data-lm-suppress-shortcuts', 'true');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', title || 'Kimi proposes a change');
    this.node.addEventListener('keydown', event => this.key(event));
    this.place(proposals[0]);
  }

  /** Under the target cell (in the notebook's flow), else at the top of the notebook. */
  private place(first: IProposal | undefined): void {
    const notebook = this.panel.content;
    if (!first) {
      this.panel.node.appendChild(this.node); // a one-line outcome: over the notebook, closable
      return;
    }
    const index = cellIndex(this.panel, first.cell_id);
    const widget = index >= 0 ? notebook.widgets[index] : undefined;
    if (widget) {
      this.node.classList.add('jp-kimi-proposals-at-cell');
      widget.node.appendChild(this.node);
      void notebook
        .scrollToCell(widget)
        .then(() => this.node.scrollIntoView({ block: 'nearest' }))
        .catch(() => undefined);
    } else {
      const top = notebook.widgets[0];
      if (top) {
        this.node.classList.add('jp-kimi-proposals-at-cell');
        top.node.parentElement?.insertBefore(this.node, top.node);
      } else {
        this.panel.node.appendChild(this.node);
      }
    }
  }

  /** A accepts, R rejects the first pending change (not while typing a note). */
  private key(event: KeyboardEvent): void {
    if (event.target instanceof HTMLTextAreaElement || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const first = this.pending()[0];
    const key = event.key.toLowerCase();
    if (first && (key === 'a' || key === 'r')) {
      event.preventDefault();
      event.stopPropagation();
      if (key === 'a') {
        this.accept([first]);
      } else {
        this.reject([first]);
      }
    }
  }

  /** Give the card the keyboard, unless the user is typing somewhere. */
  focus(): void {
    const active = document.activeElement as HTMLElement | null;
    const typing = !!active && (active.isContentEditable || active instanceof HTMLTextAreaElement || active instanceof HTMLInputElement);
    if (!typing) {
      this.node.focus({ preventScroll: true });
    }
  }

  /** Kimi.auto_apply_edits: accept everything at once (still one undo step), and say so. */
  applyWithoutAsking(): void {
    this.node.insertBefore(
      el('div', 'jp-kimi-proposal-explanation', 'Applied without asking (Kimi.auto_apply_edits is on).'),
      this.node.children[1] ?? null
    );
    this.accept(this.pending());
  }

  update(proposal: IProposal): void {
    const item = this.items.find(i => i.proposal.pid === proposal.pid);
    if (item && item.state === 'checking') {
      item.proposal = proposal;
      item.state = 'pending';
      this.draw(item);
      this.finish();
    }
  }

  end(reason: string): void {
    for (const item of this.items) {
      if (item.state === 'pending' || item.state === 'checking') {
        item.state = 'expired';
        item.proposal.status = reason;
        this.draw(item);
      }
    }
    this.finish();
  }

  private pending(): IItem[] {
    return this.items.filter(i => i.state === 'pending');
  }

  private draw(item: IItem): void {
    const p = item.proposal;
    const node = item.node;
    node.dataset.state = item.state;
    node.dataset.kind = p.kind;
    const head = el('div', 'jp-kimi-proposal-target', p.target);
    const parts: HTMLElement[] = [head];
    if (p.changed && item.state === 'pending') {
      parts.push(el('div', 'jp-kimi-proposal-changed',
        'This cell changed after Kimi proposed the edit. The diff below is against its current source; accept again to apply it.'));
    }
    parts.push(renderDiff(p.diff));
    if (item.state === 'pending') {
      const buttons = el('div', 'jp-kimi-proposal-buttons');
      buttons.append(
        actionButton('Accept', 'Apply this change to the notebook (A)', () => this.accept([item]), 'jp-mod-accept'),
        actionButton('Reject', 'Leave the notebook as it is; the note goes to Kimi (R)', () => this.reject([item]), 'jp-mod-reject')
      );
      parts.push(item.note, buttons);
    } else {
      const outcome = {
        checking: 'Checking the cell…',
        accepted: 'Accepted: applied to the notebook (Z in command mode, Undo Cell Operation, reverts it).',
        rejected: 'Rejected: the notebook is unchanged.',
        failed: `Not applied: ${p.status}`,
        expired: 'No longer waiting for a decision: the notebook is unchanged.'
      }[item.state];
      const line = el('div', 'jp-kimi-proposal-outcome', outcome);
      parts.push(line);
      if (item.state === 'accepted' && p.kind === 'edit' && p.cell_type === 'code') {
        line.append(' ', actionButton('Run cell', 'Run the changed cell', () => this.run(p), 'jp-mod-run'));
      }
    }
    node.replaceChildren(...parts);
  }

  private run(p: IProposal): void {
    const index = cellIndex(this.panel, p.cell_id);
    if (index < 0) {
      return;
    }
    const notebook = this.panel.content;
    notebook.activeCellIndex = index;
    notebook.deselectAll();
    void NotebookActions.run(notebook, this.panel.sessionContext);
  }

  private decide(item: IItem, outcome: 'accepted' | 'rejected' | 'failed', note: string): void {
    item.state = outcome;
    if (outcome === 'failed') {
      item.proposal.status = note;
    }
    this.send({ type: 'decision', id: this.id, pid: item.proposal.pid, outcome, note });
    this.draw(item);
  }

  private reject(items: IItem[]): void {
    for (const item of items) {
      this.decide(item, 'rejected', item.note.value.trim());
    }
    this.finish();
  }

  /** Apply what still matches the notebook in one transaction; re-diff what changed. */
  private accept(items: IItem[]): void {
    const model = this.panel.content.model;
    if (!model) {
      return;
    }
    const shared = model.sharedModel;
    const ready: IItem[] = [];
    for (const item of items) {
      const p = item.proposal;
      const index = cellIndex(this.panel, p.cell_id);
      if (p.kind === 'edit') {
        if (index < 0) {
          this.decide(item, 'failed', 'the cell was deleted');
        } else if (shared.cells[index].getSource() !== p.old) {
          item.state = 'checking';
          this.draw(item);
          this.send({ type: 'changed', id: this.id, pid: p.pid, current: shared.cells[index].getSource() });
        } else {
          ready.push(item);
        }
      } else if (p.cell_id && index < 0) {
        this.decide(item, 'failed', 'the cell it should follow was deleted');
      } else {
        ready.push(item);
      }
    }
    if (ready.length) {
      // Positions come from the cells as they are now: the model's cell list only
      // catches up when the transaction ends. Inserts go in from the bottom up (and
      // in reverse for the same place), so none shifts another's position.
      const edits = ready.filter(i => i.proposal.kind === 'edit');
      const inserts = ready
        .filter(i => i.proposal.kind === 'insert')
        .map((item, order) => ({
          item,
          order,
          at: item.proposal.cell_id ? cellIndex(this.panel, item.proposal.cell_id) + 1 : 0
        }))
        .sort((a, b) => b.at - a.at || b.order - a.order);
      stopCapturing(shared);
      shared.transact(() => {
        for (const { proposal } of edits) {
          shared.cells[cellIndex(this.panel, proposal.cell_id)].setSource(proposal.new);
        }
        for (const { item, at } of inserts) {
          const p = item.proposal;
          shared.insertCell(at, { cell_type: p.cell_type as any, source: p.new, metadata: {} });
        }
      });
      stopCapturing(shared);
      for (const item of ready) {
        this.decide(item, 'accepted', '');
      }
    }
    this.finish();
  }

  private finish(): void {
    const open = this.items.some(i => i.state === 'pending' || i.state === 'checking');
    this.bulk.hidden = !open || this.pending().length < 2;
    this.closeButton.hidden = open;
    this.node.dataset.open = open ? 'true' : 'false';
  }

  private items: IItem[] = [];
  private bulk = el('div', 'jp-kimi-proposals-bulk');
  private closeButton: HTMLButtonElement;
}
