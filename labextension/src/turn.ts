/**
 * Fold a turn's events into a snapshot, like `Response.feed` in Python.
 *
 * The sidebar feeds it the events that arrive over the comm; the MIME
 * renderer builds one from a saved `Response.summary()`.
 */
import { IResponseSummary, IToolStep, ITurnMeta, IUsage, KimiEvent } from './protocol';

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

const USAGE_COUNTS: (keyof IUsage)[] = [
  'prompt',
  'completion',
  'cached',
  'reasoning',
  'total',
  'cost'
];

function addUsage(a: IUsage, b: IUsage): IUsage {
  if (b.reported === false) {
    return a;
  }
  if (a.reported === false) {
    return { ...b };
  }
  const sum: IUsage = { reported: true, currency: a.currency ?? b.currency };
  for (const key of USAGE_COUNTS) {
    const x = a[key] as number | null | undefined;
    const y = b[key] as number | null | undefined;
    (sum as Record<string, unknown>)[key] =
      x === null || x === undefined
        ? y ?? null
        : y === null || y === undefined
          ? x
          : x + y;
  }
  return sum;
}

export class TurnState {
  meta: ITurnMeta = {};
  text = '';
  reasoning = '';
  steps: IToolStep[] = [];
  usage: IUsage | null = null;
  phase: Phase = 'waiting';
  note = '';
  error: string | null = null;
  errorKind: string | null = null;
  cut = false;
  finished = false;
  /** Bumped on every change; views compare it to skip needless repaints. */
  version = 0;

  static fromSummary(summary: IResponseSummary, meta?: ITurnMeta): TurnState {
    const state = new TurnState();
    state.finish(summary, meta ?? summary.meta);
    return state;
  }

  feed(event: KimiEvent): void {
    this.version++;
    switch (event.type) {
      case 'ReasoningDelta':
        this.reasoning += event.text;
        this.phase = 'thinking';
        this.clearRetryNote();
        break;
      case 'TextDelta':
        this.text += event.text;
        this.phase = 'answering';
        this.clearRetryNote();
        break;
      case 'ToolCallRequested':
        this.phase = 'calling tools';
        break;
      case 'ToolCallStarted':
        this.upsertStep(event.id, event.name, event.arguments).state = 'running';
        this.phase = 'calling tools';
        break;
      case 'ApprovalRequested':
        this.upsertStep(event.id, event.name, event.code).state =
          'awaiting approval';
        this.phase = 'awaiting approval';
        break;
      case 'ApprovalResolved': {
        const step = this.step(event.id);
        if (step) {
          step.approved = event.approved;
          step.state = event.approved ? 'approved' : 'denied';
        }
        this.phase = 'calling tools';
        break;
      }
      case 'ToolCallFinished': {
        const step = this.step(event.id);
        if (step) {
          step.result = event.result;
          step.error = event.error ?? null;
          step.seconds = event.seconds ?? null;
          if (step.state !== 'denied') {
            step.state = event.error ? 'error' : 'done';
          }
        }
        this.phase = 'waiting';
        break;
      }
      case 'Usage': {
        const { type: _type, ...usage } = event;
        this.usage = this.usage ? addUsage(this.usage, usage) : usage;
        break;
      }
      case 'Retrying':
        this.note = `retrying in ${Math.round(event.wait)} s (${event.reason})`;
        this.phase = 'waiting';
        break;
      case 'Notice':
        // Several notices (a document's summary, then "Simulated reply") stay one per line.
        this.clearRetryNote();
        if (!this.note.split('\n').includes(event.text)) {
          this.note = this.note ? `${this.note}\n${event.text}` : event.text;
        }
        break;
      case 'Done':
        this.cut = this.cut || !!event.cut;
        this.phase = event.cut ? 'cut' : 'done';
        break;
      case 'Failed':
        this.error = event.error;
        this.errorKind = event.kind ?? null;
        this.cut = this.cut || !!event.partial;
        this.phase = event.kind === 'Interrupted' ? 'interrupted' : 'failed';
        break;
    }
  }

  /** Replace the snapshot with the kernel's final, exact one. */
  finish(summary: IResponseSummary, meta?: ITurnMeta): void {
    this.version++;
    if (meta && Object.keys(meta).length) {
      this.meta = { ...this.meta, ...meta };
    }
    if (summary.model && !this.meta.model) {
      this.meta = { ...this.meta, model: summary.model };
    }
    this.text = summary.text ?? '';
    this.reasoning = summary.reasoning ?? '';
    this.steps = (summary.tool_steps ?? []).map(step => ({ ...step }));
    this.usage = summary.usage ?? null;
    this.error = summary.error ?? null;
    this.cut = !!summary.cut;
    this.finished = true;
    if (this.error) {
      this.phase =
        this.phase === 'interrupted' || this.error.startsWith('Interrupted')
          ? 'interrupted'
          : 'failed';
    } else {
      this.phase = this.cut ? 'cut' : 'done';
    }
    if (this.note.startsWith('retrying')) {
      this.note = '';
    }
    if (!this.note && summary.notices?.length) {
      this.note = summary.notices.join('\n');
    }
  }

  private clearRetryNote(): void {
    if (this.note.startsWith('retrying')) {
      this.note = '';
    }
  }

  private step(id: string): IToolStep | undefined {
    return this.steps.find(step => step.id === id);
  }

  private upsertStep(id: string, name: string, args: string): IToolStep {
    let step = this.step(id);
    if (!step) {
      step = { id, name, arguments: args, state: 'requested' };
      this.steps.push(step);
    }
    return step;
  }
}
