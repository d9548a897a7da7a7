/**
 * Fold a turn's events into a snapshot, exactly like `Response.feed` in
 * Python (and the phase like `display/fmt.py`'s `next_phase`).
 *
 * The sidebar feeds it the events that arrive over the comm and replaces the
 * snapshot with the kernel's `Response.summary()` when the turn is done; the
 * MIME renderer builds one from a saved summary. `test/turn.test.ts` folds
 * the golden turns of `tests/golden/turns/` and compares with what Python
 * folds, so the two cannot drift apart.
 */
import { seconds } from './format';
import {
  INTERRUPTED_KIND,
  IResponseSummary,
  IToolStepJSON,
  ITurnMetaJSON,
  IUsageEvent,
  IUsageJSON,
  KimiEvent
} from './protocol';

export type Phase =
  | 'queued'
  | 'waiting'
  | 'thinking'
  | 'answering'
  | 'calling tools'
  | 'awaiting approval'
  | 'done'
  | 'cut'
  | 'failed'
  | 'interrupted';

/** What a view knows of the turn's settings (partial before `start`). */
export type TurnMeta = Partial<ITurnMetaJSON>;

/** Tool step states during which the turn is still calling tools. */
const BUSY = new Set(['running', 'awaiting approval', 'approved']);

/** `Usage.not_reported()`. */
export function notReported(): IUsageJSON {
  return {
    prompt: null,
    completion: null,
    cached: null,
    reasoning: null,
    total: null,
    cost: null,
    currency: null,
    reported: false
  };
}

/** A `Usage` event as the dataclass holds it (its defaults filled in). */
export function usageOf(event: IUsageEvent): IUsageJSON {
  return {
    prompt: event.prompt ?? null,
    completion: event.completion ?? null,
    cached: event.cached ?? null,
    reasoning: event.reasoning ?? null,
    total: event.total ?? null,
    cost: event.cost ?? null,
    currency: event.currency ?? null,
    reported: event.reported ?? true
  };
}

function add(a: number | null, b: number | null): number | null {
  return a === null && b === null ? null : (a ?? 0) + (b ?? 0);
}

/**
 * `Usage.__add__`: counts add up; an unreported side contributes nothing;
 * costs in two currencies are never summed (the cost becomes unknown).
 */
export function addUsage(a: IUsageJSON, b: IUsageJSON): IUsageJSON {
  if (!b.reported) {
    return a;
  }
  if (!a.reported) {
    return b;
  }
  const mixed = !!a.currency && !!b.currency && a.currency !== b.currency;
  return {
    prompt: add(a.prompt, b.prompt),
    completion: add(a.completion, b.completion),
    cached: add(a.cached, b.cached),
    reasoning: add(a.reasoning, b.reasoning),
    total: add(a.total, b.total),
    cost: mixed ? null : add(a.cost, b.cost),
    currency: a.currency === b.currency ? a.currency : a.currency || b.currency,
    reported: true
  };
}

export class TurnState {
  meta: TurnMeta = {};
  model: string | null = null;
  text = '';
  reasoning = '';
  notices: string[] = [];
  steps: IToolStepJSON[] = [];
  usage: IUsageJSON = notReported();
  /** Whether any `Usage` event arrived (the first one replaces "not reported"). */
  usageSeen = false;
  /** What the priced requests cost, per currency (never summed across them). */
  costs: Record<string, number> = {};
  finishReason: string | null = null;
  phase: Phase = 'waiting';
  note = '';
  error: string | null = null;
  errorKind: string | null = null;
  cut = false;
  finished = false;
  /** Bumped on every change; views compare it to skip needless repaints. */
  version = 0;
  // Agent steps, as `Response.feed` keeps them: where the current step's reasoning starts,
  // whether tools ran since (the next reasoning is a new paragraph), each call's reasoning.
  private toolsRan = false;
  private stepStart = 0;
  private batchReasoning: string | null = null;
  private callReasoning = new Map<string, string>();

  static fromSummary(summary: IResponseSummary, meta?: TurnMeta): TurnState {
    const state = new TurnState();
    state.finish(summary, meta);
    return state;
  }

  /** The user stopped the turn (told by the error's kind, never its wording). */
  get interrupted(): boolean {
    return this.errorKind === INTERRUPTED_KIND;
  }

  /** The turn failed for any other reason. */
  get failed(): boolean {
    return this.error !== null && !this.interrupted;
  }

  feed(event: KimiEvent): void {
    this.version++;
    switch (event.type) {
      case 'ReasoningDelta':
        if (this.toolsRan) {
          this.toolsRan = false;
          if (event.text && this.reasoning.trim()) {
            // A new agent step reasons again: its own paragraph (as the kernel's summary has it).
            this.reasoning += this.reasoning.endsWith('\n\n') ? '' : '\n\n';
            this.stepStart = this.reasoning.length;
          }
        }
        this.reasoning += event.text;
        this.clearRetryNote();
        break;
      case 'TextDelta':
        this.text += event.text;
        this.clearRetryNote();
        break;
      case 'ToolCallRequested':
        if (this.batchReasoning === null) {
          // The first call of this step: the step's reasoning goes with each of its calls.
          this.batchReasoning = this.reasoning.slice(this.stepStart).trim();
        }
        this.callReasoning.set(event.id, this.batchReasoning);
        this.clearRetryNote();
        break;
      case 'ToolCallStarted': {
        this.toolsStarted();
        const step = this.step(event.id);
        if (step) {
          step.state = 'running';
        } else {
          this.steps.push(
            newStep(event.id, event.name, event.arguments, 'running', this.callReasoning.get(event.id) ?? '')
          );
        }
        break;
      }
      case 'ApprovalRequested': {
        this.toolsStarted();
        const step = this.step(event.id);
        if (step) {
          step.state = 'awaiting approval';
        } else {
          this.steps.push(
            newStep(event.id, event.name, event.code, 'awaiting approval', this.callReasoning.get(event.id) ?? '')
          );
        }
        break;
      }
      case 'ApprovalResolved': {
        const step = this.step(event.id);
        if (step) {
          step.approved = event.approved;
          step.state = event.approved ? 'approved' : 'denied';
        }
        break;
      }
      case 'ToolCallFinished': {
        const step = this.step(event.id);
        if (step) {
          step.result = event.result;
          step.error = event.error ?? null;
          step.seconds = event.seconds ?? 0;
          if (step.state !== 'denied') {
            step.state = event.error ? 'error' : 'done';
          }
        }
        break;
      }
      case 'Usage': {
        // Several requests in one agent turn add up; one request reports once.
        const usage = usageOf(event);
        this.usage = this.usageSeen ? addUsage(this.usage, usage) : usage;
        this.usageSeen = true;
        if (usage.reported && usage.cost !== null) {
          const key = usage.currency || '';
          this.costs[key] = (this.costs[key] ?? 0) + usage.cost;
          if (Object.keys(this.costs).length > 1 && this.usage.cost !== null) {
            this.usage = { ...this.usage, cost: null };
          }
        }
        break;
      }
      case 'Retrying':
        this.note = `retrying in ${seconds(event.wait)} (${event.reason})`;
        break;
      case 'Notice':
        this.notices.push(event.text);
        // Several notices (a document's summary, then "Simulated reply") stay one per line.
        this.clearRetryNote();
        if (!this.note.split('\n').includes(event.text)) {
          this.note = this.note ? `${this.note}\n${event.text}` : event.text;
        }
        break;
      case 'Done':
        this.finishReason = event.finish_reason ?? null;
        this.cut = this.cut || !!event.cut;
        break;
      case 'Failed':
        this.error = event.error;
        this.errorKind = event.kind ?? 'KimiError';
        this.cut = this.cut || !!event.partial;
        break;
    }
    this.phase = this.nextPhase(event);
  }

  /** Replace the snapshot with the kernel's final, exact one. */
  finish(summary: IResponseSummary, meta?: TurnMeta): void {
    this.version++;
    if (meta && Object.keys(meta).length) {
      this.meta = { ...this.meta, ...meta };
    }
    this.model = summary.model ?? null;
    if (this.model && !this.meta.model) {
      this.meta = { ...this.meta, model: this.model };
    }
    this.text = summary.text ?? '';
    this.reasoning = summary.reasoning ?? '';
    this.notices = [...(summary.notices ?? [])];
    this.steps = (summary.tool_steps ?? []).map(step => ({ ...step }));
    this.usage = summary.usage ? { ...notReported(), ...summary.usage } : notReported();
    this.costs = { ...(summary.costs ?? {}) };
    this.finishReason = summary.finish_reason ?? null;
    this.error = summary.error ?? null;
    this.errorKind = summary.error_kind ?? null;
    this.cut = !!summary.cut;
    this.finished = true;
    if (this.error !== null) {
      this.phase = this.interrupted ? 'interrupted' : 'failed';
    } else {
      this.phase = this.cut ? 'cut' : 'done';
    }
    if (this.note.startsWith('retrying')) {
      this.note = '';
    }
    if (!this.note && this.notices.length) {
      this.note = this.notices.join('\n');
    }
  }

  /** The step's calls are all requested and now run: later reasoning is a new step. */
  private toolsStarted(): void {
    this.batchReasoning = null;
    this.toolsRan = true;
    this.stepStart = this.reasoning.length;
  }

  /** `Response.summary()` of what was folded so far. */
  summary(): IResponseSummary {
    return {
      model: this.model,
      text: this.text,
      reasoning: this.reasoning,
      notices: [...this.notices],
      tool_steps: this.steps.map(step => ({ ...step })),
      usage: { ...this.usage },
      costs: { ...this.costs },
      finish_reason: this.finishReason,
      cut: this.cut,
      error: this.error,
      error_kind: this.errorKind
    };
  }

  /** `next_phase` in `display/fmt.py`. */
  private nextPhase(event: KimiEvent): Phase {
    switch (event.type) {
      case 'ReasoningDelta':
        return 'thinking';
      case 'TextDelta':
        return 'answering';
      case 'ApprovalRequested':
        return 'awaiting approval';
      case 'ToolCallRequested':
      case 'ToolCallStarted':
      case 'ApprovalResolved':
        return 'calling tools';
      case 'ToolCallFinished':
        return this.steps.some(step => BUSY.has(step.state)) ? 'calling tools' : 'waiting';
      case 'Retrying':
        return 'waiting';
      case 'Done':
        return event.cut ? 'cut' : 'done';
      case 'Failed':
        return event.kind === INTERRUPTED_KIND ? 'interrupted' : 'failed';
      default:
        return this.phase;
    }
  }

  private clearRetryNote(): void {
    if (this.note.startsWith('retrying')) {
      this.note = '';
    }
  }

  private step(id: string): IToolStepJSON | undefined {
    return this.steps.find(step => step.id === id);
  }
}

function newStep(id: string, name: string, args: string, state: string, reasoning: string): IToolStepJSON {
  return {
    id,
    name,
    arguments: args,
    state,
    result: null,
    error: null,
    seconds: null,
    approved: null,
    reasoning
  };
}
