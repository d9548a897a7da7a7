/**
 * Which cells are AI-made, in each cell's own metadata.
 *
 * A kernel cannot write cell metadata. It puts where a turn's output came from
 * in that output's display metadata, under `kimi_jupyter` (model; origin:
 * live, replayed from the recording, or cache; the recording and its entry;
 * the cost when it ran: `kimi_jupyter/recording.py`), which nbformat saves in
 * headless runs (nbclient, nbval, papermill) too. In JupyterLab this copies it
 * to the cell: `metadata.kimi_jupyter = {"ai_outputs": [...]}`, one item per
 * AI output in order, so a reader or a tool sees the AI cells without reading
 * outputs. A cell whose outputs hold none has no such key. Values arrive from
 * the kernel and are checked: only the known fields, each a short string, a
 * finite number or null.
 */
import { ICellModel, ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

export const PROVENANCE_KEY = 'kimi_jupyter';
const TEXT_FIELDS = ['model', 'origin', 'recording', 'entry', 'currency'] as const;
const MAX_TEXT = 200;
const MAX_OUTPUTS = 100;

export interface IProvenance {
  model: string | null;
  origin: string | null;
  recording: string | null;
  entry: string | null;
  cost: number | null;
  currency: string | null;
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value.slice(0, MAX_TEXT) : null;
}

/** The checked provenance of one output's metadata, or null when it has none. */
export function provenanceOfOutput(output: unknown): IProvenance | null {
  const metadata = (output as { metadata?: unknown } | null)?.metadata;
  const raw = (metadata as Record<string, unknown> | null | undefined)?.[PROVENANCE_KEY];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    return null;
  }
  const fields = raw as Record<string, unknown>;
  const found = Object.fromEntries(TEXT_FIELDS.map(name => [name, text(fields[name])])) as Omit<
    IProvenance,
    'cost'
  >;
  if (!found.origin) {
    return null;
  }
  const cost = typeof fields.cost === 'number' && Number.isFinite(fields.cost) ? fields.cost : null;
  return {
    model: found.model,
    origin: found.origin,
    recording: found.recording,
    entry: found.entry,
    cost,
    currency: found.currency
  };
}

/** What a cell's metadata says about its outputs: null when none is AI-made. */
export function cellProvenance(outputs: ReadonlyArray<unknown>): { ai_outputs: IProvenance[] } | null {
  const found: IProvenance[] = [];
  for (const output of outputs.slice(0, MAX_OUTPUTS)) {
    const item = provenanceOfOutput(output);
    if (item) {
      found.push(item);
    }
  }
  return found.length ? { ai_outputs: found } : null;
}

function sync(cell: ICodeCellModel): void {
  const wanted = cellProvenance(cell.outputs.toJSON());
  const current = cell.getMetadata(PROVENANCE_KEY);
  if (wanted === null) {
    if (current !== undefined) {
      cell.deleteMetadata(PROVENANCE_KEY);
    }
  } else if (JSON.stringify(current) !== JSON.stringify(wanted)) {
    cell.setMetadata(PROVENANCE_KEY, wanted as any);
  }
}

const watched = new WeakSet<ICellModel>();
const watchedNotebooks = new WeakSet<object>();

function watchCell(cell: ICellModel): void {
  if (cell.type !== 'code' || watched.has(cell)) {
    return;
  }
  watched.add(cell);
  const code = cell as ICodeCellModel;
  code.outputs.changed.connect(() => sync(code));
}

/** Keep every notebook's code cells' `kimi_jupyter` metadata in step with their outputs. */
export function activateProvenance(tracker: INotebookTracker): void {
  const watch = (panel: NotebookPanel) => {
    const attach = () => {
      const model = panel.content.model;
      if (!model || watchedNotebooks.has(model)) {
        return;
      }
      watchedNotebooks.add(model);
      const all = () => {
        for (let i = 0; i < model.cells.length; i++) {
          watchCell(model.cells.get(i));
        }
      };
      model.cells.changed.connect(all);
      all();
    };
    panel.content.modelChanged.connect(attach);
    void panel.context.ready.then(attach);
  };
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}
