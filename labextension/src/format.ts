/**
 * Words and numbers shared with the Python renderers (`display/fmt.py` and
 * `Usage.describe`), so the sidebar, the live widget and the saved output
 * read alike.
 */
import { IToolStepJSON, ITurnMetaJSON, IUsageJSON } from './protocol';

export function formatCost(cost: number, currency?: string | null): string {
  const symbol = currency === 'CNY' ? '¥' : currency === 'USD' ? '$' : '';
  if (symbol) {
    return cost
      ? (symbol + cost.toFixed(6)).replace(/0+$/, '').replace(/\.$/, '')
      : `${symbol}0`;
  }
  return `${cost.toFixed(6)} ${currency ?? ''}`.trim();
}

function has(value: number | null | undefined): value is number {
  return value !== null && value !== undefined;
}

/** `seconds` in `display/fmt.py`: '3 s', '2.5 s', '12 s'. */
export function seconds(value: number): string {
  return value >= 10 || value === Math.trunc(value)
    ? `${value.toFixed(0)} s`
    : `${value.toFixed(1)} s`;
}

/**
 * `usage_line` in `display/fmt.py`. `costs` (per currency) is shown when the
 * usage has no single cost: a turn priced in two currencies is never summed.
 */
export function usageLine(
  usage: IUsageJSON | null,
  contextWindow?: number | null,
  costs?: Record<string, number> | null
): string {
  if (!usage || usage.reported === false) {
    return 'usage: not reported by the server';
  }
  const parts: string[] = [];
  if (has(usage.prompt)) {
    parts.push(
      `prompt ${usage.prompt}` + (usage.cached ? ` (${usage.cached} cached)` : '')
    );
  }
  if (has(usage.completion)) {
    parts.push(
      `completion ${usage.completion}` +
        (usage.reasoning ? ` (${usage.reasoning} reasoning)` : '')
    );
  }
  if (has(usage.total)) {
    parts.push(`total ${usage.total} tokens`);
  }
  if (has(usage.cost)) {
    parts.push(`cost ${formatCost(usage.cost, usage.currency)}`);
  } else if (costs && Object.keys(costs).length) {
    const each = Object.entries(costs).map(([currency, cost]) =>
      formatCost(cost, currency || null)
    );
    parts.push(`cost ${each.join(' + ')}`);
  }
  let line = parts.length ? 'usage: ' + parts.join(', ') : 'usage: (empty)';
  const used = has(usage.total)
    ? usage.total
    : (usage.prompt ?? 0) + (usage.completion ?? 0);
  if (contextWindow && used) {
    const fill = ((100 * used) / contextWindow).toFixed(1);
    line += `, context ${fill}% of ${contextWindow.toLocaleString('en-US')}`;
  }
  return line;
}

export function preview(text: string, limit = 200): string {
  const trimmed = text.trim();
  return trimmed.length <= limit
    ? trimmed
    : trimmed.slice(0, limit - 1).trimEnd() + '…';
}

export function stepSummary(step: IToolStepJSON): string {
  let state = step.state;
  if (state === 'error' && step.error) {
    state = `error: ${preview(step.error, 120)}`;
  }
  const seconds =
    typeof step.seconds === 'number' && step.seconds >= 0.05
      ? ` · ${step.seconds.toFixed(1)} s`
      : '';
  return `${step.name} · ${state}${seconds}`;
}

export function reasoningTitle(reasoning: string, usage: IUsageJSON | null): string {
  if (usage && usage.reported !== false && usage.reasoning) {
    return `Reasoning · ${usage.reasoning.toLocaleString('en-US')} tokens`;
  }
  const approx = Math.floor((reasoning.length + 3) / 4);
  return `Reasoning · ~${approx.toLocaleString('en-US')} tokens`;
}

export function headline(meta: Partial<ITurnMetaJSON>, state?: string): string {
  const parts: string[] = [];
  if (meta.title) {
    parts.push(meta.title);
  }
  if (meta.model) {
    parts.push(meta.model + (meta.provider ? ` (${meta.provider})` : ''));
  }
  if (meta.thinking !== undefined && meta.thinking !== null) {
    parts.push(meta.thinking ? 'thinking on' : 'thinking off');
  }
  if (state) {
    parts.push(state);
  }
  return parts.join(' · ');
}
