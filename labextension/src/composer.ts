/**
 * The input area: a toolbar (icons to attach the active cell, its output or a
 * file; the model, effort and thinking pickers; the permission switch; New
 * chat), attachment chips, the prompt box (Enter sends, Shift+Enter is a
 * newline), the start of the answer (partial mode), Send and Stop.
 *
 * The toolbar's values are remembered per notebook (the browser's
 * localStorage, keyed by the notebook's path) and each reaches the request:
 * `model`, `effort` (only for a model the registry gives effort levels),
 * `thinking` and `agent` in the ask options.
 */
import { LabIcon, addIcon, codeIcon, fileIcon, imageIcon } from '@jupyterlab/ui-components';

import { Attachment } from './protocol';
import { button } from './view';

const STORE = 'kimi-jupyter:chat-options:';

/** What the toolbar remembers for one notebook. */
export interface IRemembered {
  model?: string;
  effort?: string;
  thinking?: boolean;
  agent?: boolean;
}

function recall(key: string): IRemembered {
  try {
    const value = JSON.parse(window.localStorage.getItem(STORE + key) ?? '{}');
    return value && typeof value === 'object' ? (value as IRemembered) : {};
  } catch {
    return {};
  }
}

function remember(key: string, value: IRemembered): void {
  try {
    window.localStorage.setItem(STORE + key, JSON.stringify(value));
  } catch {
    // storage full or disabled: the values last for this page only
  }
}

/** A toolbar button that shows an icon; its name (for screen readers and tests) is ``label``. */
function iconButton(icon: LabIcon, label: string, title: string, onClick: () => void): HTMLButtonElement {
  const node = button('', title, onClick);
  node.classList.add('jp-kimi-icon-button');
  node.setAttribute('aria-label', label);
  node.append(icon.element({ tag: 'span', className: 'jp-kimi-icon', elementPosition: 'center' }));
  return node;
}

export interface ISendOptions {
  agent?: boolean;
  /** Only set once the user has picked a model: the kernel's Kimi.model rules until then. */
  model?: string;
  /** Thinking effort, for a model that has effort levels (unset: the server's default). */
  effort?: string;
  /** Only set once the user has changed the Think box: the kernel's setting rules until then. */
  thinking?: boolean;
  /** Partial mode: the answer starts with this text (one message; the field empties on Send). */
  prefill?: string;
}

export interface IComposerOptions {
  onSend: (prompt: string, attachments: Attachment[], options: ISendOptions) => void;
  onStop: () => void;
  onAttachCell: () => Attachment | string;
  onAttachImage: () => Attachment | string;
  /** Pick files in a file-browser dialog (null: no file manager in this JupyterLab). */
  onAttachFile: (() => Promise<Attachment[] | string>) | null;
  onReset: () => void;
  /** The notebook the toolbar's values are remembered for (its path). */
  storageKey?: () => string;
}

/** ``input`` as a checkbox inside a label that reads ``text``. */
function checkbox(input: HTMLInputElement, className: string, text: string, title: string): HTMLLabelElement {
  const label = document.createElement('label');
  label.className = className;
  label.title = title;
  input.type = 'checkbox';
  label.append(input, document.createTextNode(` ${text}`));
  return label;
}

export class Composer {
  readonly node = document.createElement('div');

  constructor(private options: IComposerOptions) {
    this.node.className = 'jp-kimi-composer';
    const tools = document.createElement('div');
    tools.className = 'jp-kimi-tools jp-kimi-toolbar';
    tools.setAttribute('role', 'toolbar');
    tools.setAttribute('aria-label', 'Chat tools');
    tools.append(
      iconButton(codeIcon, 'Attach active cell', 'Attach the active cell (source and text outputs)', () =>
        this.attach(options.onAttachCell())
      ),
      iconButton(imageIcon, 'Attach output / plot', 'Attach the image or plot the active cell displayed', () =>
        this.attach(options.onAttachImage())
      ),
      ...(options.onAttachFile
        ? [
            iconButton(
              fileIcon,
              'Attach file',
              'Attach a document (pdf, docx, xlsx, pptx, txt, md), image or video from the file browser',
              () => void this.attachFiles(options.onAttachFile)
            )
          ]
        : [])
    );
    this.chips.className = 'jp-kimi-chips';
    this.hint.className = 'jp-kimi-hint';
    this.hint.hidden = true;
    this.chips.hidden = true;
    this.input.className = 'jp-kimi-input';
    this.input.rows = 3;
    this.input.placeholder =
      'Ask Kimi about this notebook. {df} inserts a variable. Enter sends, Shift+Enter: new line';
    this.input.addEventListener('keydown', event => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        event.stopPropagation();
        this.send();
      }
    });
    const row = document.createElement('div');
    row.className = 'jp-kimi-send-row';
    const agent = checkbox(
      this.agent,
      'jp-kimi-agent',
      'Let Kimi run code (asks first)',
      'Agent mode: Kimi may call run_python, get_variable and list_variables in this kernel. ' +
        'Code runs only after you click Run it.'
    );
    this.sendButton = button('Send', 'Send (Enter)', () => this.send());
    this.sendButton.classList.add('jp-mod-accept');
    this.stopButton = button('Stop', 'Interrupt the kernel: stops the answer, keeps what arrived', () =>
      options.onStop()
    );
    this.stopButton.classList.add('jp-mod-warn');
    this.stopButton.disabled = true;
    const think = checkbox(
      this.thinking,
      'jp-kimi-think',
      'Think',
      'Kimi reasons before it answers (the trace shows above the answer). Untick for quicker, ' +
        "cheaper answers without reasoning. Starts as the kernel's Kimi.thinking setting."
    );
    this.thinking.checked = true;
    this.thinking.addEventListener('change', () => {
      this.thinkingTouched = true;
      this.save();
    });
    this.agent.addEventListener('change', () => this.save());
    const switches = document.createElement('div');
    switches.className = 'jp-kimi-switches';
    switches.append(think, agent);
    this.prefill.className = 'jp-kimi-prefill';
    this.prefill.type = 'text';
    this.prefill.setAttribute('aria-label', 'Answer starts with');
    this.prefill.placeholder = 'Answer starts with… (optional)';
    this.prefill.title =
      'Partial mode: Kimi continues from this text, so the answer keeps its form ' +
      '(a code fence, a JSON brace, a table header). Applies to the next message only.';
    this.prefill.addEventListener('keydown', event => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault();
        event.stopPropagation();
        this.send();
      }
    });
    this.model.className = 'jp-kimi-model';
    this.model.setAttribute('aria-label', 'Model');
    this.model.hidden = true;
    this.model.addEventListener('change', () => {
      this.modelTouched = true;
      this.showEfforts();
      this.save();
    });
    this.effort.className = 'jp-kimi-effort';
    this.effort.setAttribute('aria-label', 'Effort');
    this.effort.title = 'Thinking effort for this model (low is quicker and cheaper; max thinks longest)';
    this.effort.hidden = true;
    this.effort.addEventListener('change', () => {
      this.effortTouched = true;
      this.wantedEffort = this.effort.value;
      this.save();
    });
    const newChat = iconButton(addIcon, 'New chat', 'New chat: forget this chat (the notebook and %%kimi are untouched)', () =>
      options.onReset()
    );
    newChat.classList.add('jp-kimi-new-chat');
    switches.append(newChat); // on the switches' row, at its end
    tools.append(this.model, this.effort, switches);
    row.append(this.sendButton, this.stopButton);
    this.node.append(tools, this.chips, this.hint, this.input, this.prefill, row);
    this.restore();
  }

  /** The values remembered for this notebook (picked models stay picked). */
  private restore(): void {
    const key = this.options.storageKey?.();
    if (!key) {
      return;
    }
    const saved = recall(key);
    if (typeof saved.model === 'string' && saved.model) {
      this.modelTouched = true;
      this.setModels(saved.model, [], null);
    }
    if (typeof saved.effort === 'string' && saved.effort) {
      this.effortTouched = true;
      this.wantedEffort = saved.effort;
    }
    if (typeof saved.thinking === 'boolean') {
      this.thinkingTouched = true;
      this.thinking.checked = saved.thinking;
    }
    if (typeof saved.agent === 'boolean') {
      this.agent.checked = saved.agent;
    }
  }

  private save(): void {
    const key = this.options.storageKey?.();
    if (!key) {
      return;
    }
    remember(key, {
      ...(this.modelTouched && this.model.value ? { model: this.model.value } : {}),
      ...(this.effortTouched && this.effort.value ? { effort: this.effort.value } : {}),
      ...(this.thinkingTouched ? { thinking: this.thinking.checked } : {}),
      agent: this.agent.checked
    });
  }

  /** The effort picker: shown for a model with effort levels, with that model's levels. */
  private showEfforts(): void {
    const levels = this.efforts[this.model.value] ?? [];
    const keep = this.effortTouched ? this.effort.value || this.wantedEffort : '';
    this.effort.replaceChildren(
      ...['', ...levels].map(level => {
        const option = document.createElement('option');
        option.value = level;
        option.textContent = level ? `effort: ${level}` : 'effort: default';
        return option;
      })
    );
    if (keep && levels.includes(keep)) {
      this.effort.value = keep;
    }
    this.effort.hidden = levels.length === 0;
  }

  focus(): void {
    this.input.focus();
  }

  /** Attach something picked outside the composer (an output action), with a starting question. */
  attachWith(result: Attachment | string, question: string): void {
    this.attach(result);
    if (typeof result !== 'string' && !this.input.value.trim()) {
      this.input.value = question;
    }
    this.input.focus();
    this.input.select();
  }

  setRunning(running: boolean): void {
    this.stopButton.disabled = !running;
  }

  /**
   * The models the kernel's provider lists, its current one first. A model the
   * user picked stays picked; ``error`` (the list could not be had) goes in the
   * tooltip, and the picker then holds just the current model.
   */
  setModels(
    current: string | null,
    models: string[],
    error: string | null,
    efforts: { [model: string]: string[] } | null = null
  ): void {
    if (efforts) {
      this.efforts = efforts;
    }
    const keep = this.modelTouched ? this.model.value : current;
    const ids = models.length ? [...models] : current ? [current] : [];
    if (keep && !ids.includes(keep)) {
      ids.unshift(keep);
    }
    this.model.replaceChildren(
      ...ids.map(id => {
        const option = document.createElement('option');
        option.value = id;
        option.textContent = id;
        return option;
      })
    );
    if (keep) {
      this.model.value = keep;
    }
    this.model.title = error ?? 'Model for your next messages (starts as the kernel\'s Kimi.model)';
    this.model.hidden = ids.length === 0;
    this.showEfforts();
  }

  /** The kernel's thinking setting; shown until the user picks otherwise. */
  setThinkingDefault(on: boolean): void {
    if (!this.thinkingTouched) {
      this.thinking.checked = on;
    }
  }

  setEnabled(enabled: boolean): void {
    this.sendButton.disabled = !enabled;
  }

  /** A short line under the chips (e.g. why nothing was attached). */
  say(text: string): void {
    this.hint.textContent = text;
    this.hint.hidden = !text;
  }

  private async attachFiles(pick: (() => Promise<Attachment[] | string>) | null): Promise<void> {
    const picked = pick ? await pick() : [];
    if (typeof picked === 'string') {
      this.say(picked);
      return;
    }
    for (const attachment of picked) {
      this.attach(attachment);
    }
  }

  private attach(result: Attachment | string): void {
    if (typeof result === 'string') {
      this.say(result);
      return;
    }
    this.say('');
    this.attachments.push(result);
    this.renderChips();
  }

  private renderChips(): void {
    this.chips.replaceChildren(
      ...this.attachments.map((attachment, index) => {
        const chip = document.createElement('span');
        chip.className = 'jp-kimi-chip';
        if (attachment.kind === 'image') {
          const img = document.createElement('img');
          img.src = `data:${attachment.mime};base64,${attachment.data}`;
          img.alt = attachment.label ?? 'image';
          chip.appendChild(img);
        }
        const label = document.createElement('span');
        label.textContent = attachment.label ?? attachment.kind;
        const remove = button('×', 'Remove this attachment', () => {
          this.attachments.splice(index, 1);
          this.renderChips();
        });
        remove.classList.add('jp-kimi-chip-remove');
        chip.append(label, remove);
        return chip;
      })
    );
    this.chips.hidden = this.attachments.length === 0;
  }

  private send(): void {
    const prompt = this.input.value.trim();
    if (!prompt || this.sendButton.disabled) {
      return;
    }
    const attachments = this.attachments;
    const prefill = this.prefill.value;
    this.attachments = [];
    this.input.value = '';
    this.prefill.value = '';
    this.renderChips();
    this.say('');
    this.options.onSend(prompt, attachments, {
      agent: this.agent.checked,
      thinking: this.thinkingTouched ? this.thinking.checked : undefined,
      model: this.modelTouched && this.model.value ? this.model.value : undefined,
      effort: !this.effort.hidden && this.effort.value ? this.effort.value : undefined,
      prefill: prefill.trim() ? prefill : undefined
    });
  }

  private chips = document.createElement('div');
  private hint = document.createElement('div');
  private input = document.createElement('textarea');
  private agent = document.createElement('input');
  private thinking = document.createElement('input');
  private prefill = document.createElement('input');
  private model = document.createElement('select');
  private effort = document.createElement('select');
  private efforts: { [model: string]: string[] } = {};
  private effortTouched = false;
  private wantedEffort = '';
  private modelTouched = false;
  private thinkingTouched = false;
  private sendButton: HTMLButtonElement;
  private stopButton: HTMLButtonElement;
  private attachments: Attachment[] = [];
}
