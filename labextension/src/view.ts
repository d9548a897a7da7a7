/**
 * The view of one turn: header, note, reasoning (collapsible, streams), tool
 * steps (with Run it / Don't run while one waits), the answer as Markdown with
 * buttons on its code blocks, an alert line and the usage line.
 *
 * The chat sidebar and the MIME renderer both use it, so a live answer and a
 * saved one look the same.
 */
import { Clipboard } from '@jupyterlab/apputils';

import { headline, preview, reasoningTitle, stepSummary, usageLine } from './format';
import { IToolStepJSON } from './protocol';
import { TurnState } from './turn';

export type MarkdownRenderer = (host: HTMLElement, source: string) => Promise<void>;

export interface ICodeAction {
  label: string;
  title: string;
  run: (code: string) => void;
  /** Shown instead of ``label`` where space is short (the label stays the accessible name). */
  short?: string;
}

export interface ITurnViewOptions {
  renderMarkdown: MarkdownRenderer;
  /** Buttons on each code block besides Copy (Insert below, Run, ...). */
  codeActions?: ICodeAction[];
  /** Run it / Don't run for a tool call that waits; without it no buttons are shown. */
  onApprove?: (id: string, approved: boolean) => void;
}

const ACTIVE = new Set(['queued', 'waiting', 'thinking', 'answering', 'calling tools']);

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export function button(label: string, title: string, onClick: () => void): HTMLButtonElement {
  const node = el('button', 'jp-kimi-button', label);
  node.type = 'button';
  node.title = title;
  node.addEventListener('click', event => {
    event.preventDefault();
    onClick();
  });
  return node;
}

export class TurnView {
  readonly node = el('div', 'jp-kimi-turn');

  constructor(private options: ITurnViewOptions) {
    this.reasoning.append(this.reasoningSummary, this.reasoningText);
    this.reasoning.addEventListener('toggle', () => {
      // A toggle we did not ask for is the user's: stop folding automatically.
      if (this.reasoning.open !== this.autoOpen) {
        this.userFolded = true;
      }
    });
    this.node.append(
      this.head,
      this.note,
      this.reasoning,
      this.steps,
      this.answer,
      this.alert,
      this.usage
    );
  }

  /** Repaint from `state`; cheap when nothing changed. */
  update(state: TurnState): void {
    if (state.version === this.shown) {
      return;
    }
    this.shown = state.version;
    const active = ACTIVE.has(state.phase) && !state.finished;
    this.node.dataset.phase = state.phase;
    this.head.textContent = headline(state.meta, state.phase);
    this.head.classList.toggle('jp-kimi-active', active);
    this.note.textContent = state.note;
    this.note.hidden = !state.note;
    this.updateReasoning(state);
    this.updateSteps(state.steps);
    this.updateAnswer(state.text);
    this.updateAlert(state);
    // As turn_usage_line in Python: "not reported by the server" only for a turn that
    // finished; one that failed part-way never got counted, one that failed at once has none.
    const unknown = !state.usage.reported;
    const partial = state.text.length > 0 || state.reasoning.length > 0;
    const failed = state.error !== null && unknown;
    const showUsage = (state.usageSeen || state.finished) && !(failed && !partial);
    this.usage.hidden = !showUsage;
    if (showUsage) {
      this.usage.textContent = failed
        ? 'usage: unknown (the answer did not finish)'
        : usageLine(state.usage, state.meta.context_window, state.costs);
    }
  }

  private updateReasoning(state: TurnState): void {
    this.reasoning.hidden = !state.reasoning;
    if (!state.reasoning) {
      return;
    }
    this.reasoningSummary.textContent =
      reasoningTitle(state.reasoning, state.usage) +
      (state.phase === 'thinking' ? ' · thinking…' : '');
    this.reasoningText.textContent = state.reasoning.trim();
    if (!this.userFolded) {
      // Open while the model thinks, folded away once the answer starts.
      const open = state.phase === 'thinking' && !state.text;
      this.autoOpen = open;
      if (this.reasoning.open !== open) {
        this.reasoning.open = open;
      }
      if (open) {
        this.reasoningText.scrollTop = this.reasoningText.scrollHeight;
      }
    }
  }

  private updateSteps(steps: IToolStepJSON[]): void {
    this.steps.hidden = steps.length === 0;
    for (const step of steps) {
      let node = this.stepNodes.get(step.id);
      if (!node) {
        node = el('details', 'jp-kimi-step');
        this.stepNodes.set(step.id, node);
        this.steps.appendChild(node);
      }
      const key = JSON.stringify(step);
      if (node.dataset.key === key) {
        continue;
      }
      node.dataset.key = key;
      node.dataset.state = step.state;
      const summary = el('summary', 'jp-kimi-step-summary', 'tool: ' + stepSummary(step));
      const body: HTMLElement[] = [
        el('div', 'jp-kimi-label', step.state === 'awaiting approval' ? 'code' : 'arguments'),
        el('pre', 'jp-kimi-pre', preview(step.arguments, 4000))
      ];
      if (step.error) {
        body.push(el('div', 'jp-kimi-label', 'error'), el('pre', 'jp-kimi-pre', step.error));
      } else if (step.result !== null && step.result !== undefined) {
        body.push(
          el('div', 'jp-kimi-label', 'result'),
          el('pre', 'jp-kimi-pre', preview(step.result, 2000))
        );
      }
      const waiting = step.state === 'awaiting approval' && this.options.onApprove;
      if (waiting) {
        const approve = this.options.onApprove!;
        const bar = el('div', 'jp-kimi-approval');
        const decide = (approved: boolean) => {
          bar.querySelectorAll('button').forEach(b => (b.disabled = true));
          approve(step.id, approved);
        };
        // The same words as the approval in cells (kimi_jupyter/agent/approval.py).
        const yes = button("Run it", 'Let the model run this code in the kernel', () => decide(true));
        yes.classList.add('jp-mod-accept');
        bar.append(
          el('span', 'jp-kimi-label', 'Run this in the kernel?'),
          yes,
          button("Don't run", 'Do not run it; Kimi is told you declined', () => decide(false))
        );
        body.push(bar);
        node.open = true;
      }
      node.replaceChildren(summary, ...body);
    }
  }

  private updateAnswer(text: string): void {
    this.answer.hidden = !text;
    if (text === this.answerSource) {
      return;
    }
    this.answerSource = text;
    if (this.rendering) {
      this.renderAgain = true;
      return;
    }
    void this.renderAnswer();
  }

  private async renderAnswer(): Promise<void> {
    this.rendering = true;
    try {
      do {
        this.renderAgain = false;
        const source = this.answerSource;
        try {
          await this.options.renderMarkdown(this.answer, source);
        } catch (error) {
          this.answer.textContent = source;
        }
        this.decorateCode();
      } while (this.renderAgain);
    } finally {
      this.rendering = false;
    }
  }

  private decorateCode(): void {
    const actions: ICodeAction[] = [
      { label: 'Copy', title: 'Copy the code', run: code => Clipboard.copyToSystem(code) },
      ...(this.options.codeActions ?? [])
    ];
    this.answer.querySelectorAll('pre').forEach(pre => {
      if (pre.previousElementSibling?.classList.contains('jp-kimi-code-actions')) {
        return;
      }
      const bar = el('div', 'jp-kimi-code-actions');
      for (const action of actions) {
        const node = button(action.short ?? action.label, action.title, () =>
          action.run((pre.textContent ?? '').replace(/\n$/, ''))
        );
        if (action.short) {
          node.setAttribute('aria-label', action.label);
        }
        bar.appendChild(node);
      }
      pre.parentElement?.insertBefore(bar, pre);
    });
  }

  private updateAlert(state: TurnState): void {
    let text = '';
    if (state.phase === 'interrupted') {
      text = 'Interrupted: the request was stopped; the partial answer is kept.';
    } else if (state.error) {
      text = state.error;
    } else if (state.cut) {
      text = 'The stream was cut before the end; the answer is partial.';
    }
    this.alert.textContent = text;
    this.alert.hidden = !text;
    this.alert.dataset.kind = state.phase;
  }

  private head = el('div', 'jp-kimi-head');
  private note = el('div', 'jp-kimi-note');
  private reasoning = el('details', 'jp-kimi-reasoning');
  private reasoningSummary = el('summary', 'jp-kimi-reasoning-summary');
  private reasoningText = el('div', 'jp-kimi-reasoning-text');
  private steps = el('div', 'jp-kimi-steps');
  private stepNodes = new Map<string, HTMLDetailsElement>();
  private answer = el('div', 'jp-kimi-answer jp-RenderedHTMLCommon');
  private alert = el('div', 'jp-kimi-alert');
  private usage = el('div', 'jp-kimi-usage');
  private shown = -1;
  private answerSource = '';
  private rendering = false;
  private renderAgain = false;
  private userFolded = false;
  private autoOpen = false;
}
