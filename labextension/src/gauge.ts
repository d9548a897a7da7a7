/**
 * The context gauge under the chat: the tokens the last request used of the
 * model's window (as the server reported them), an estimated breakdown
 * (system prompt, the chat so far, attachments, the message), and the costs
 * as `%kimi usage` counts them: this chat (the ledger's sidebar row) and the
 * whole session. The kernel sends it after every turn (`gauge` message).
 */
import { formatCost } from './format';
import { IGaugeCost, IGaugeMessage } from './protocol';

const PARTS: [string, string][] = [
  ['system', 'system'],
  ['history', 'history'],
  ['attachments', 'attachments'],
  ['message', 'message']
];

function cost(value: IGaugeCost): string {
  return value.cost === null ? 'unknown' : formatCost(value.cost, value.currency);
}

export class Gauge {
  readonly node = document.createElement('div');

  constructor() {
    this.node.className = 'jp-kimi-gauge';
    this.node.hidden = true;
    this.node.setAttribute('role', 'status');
    this.bar.className = 'jp-kimi-gauge-bar';
    this.fill.className = 'jp-kimi-gauge-fill';
    this.bar.append(this.fill);
    this.text.className = 'jp-kimi-gauge-text';
    this.detail.className = 'jp-kimi-gauge-detail';
    this.node.append(this.bar, this.text, this.detail);
  }

  update(message: IGaugeMessage): void {
    const used = message.used;
    const window = message.window;
    const share = used !== null && window ? Math.min(1, used / window) : 0;
    this.fill.style.width = `${(share * 100).toFixed(1)}%`;
    this.node.dataset.level = share > 0.8 ? 'high' : share > 0.5 ? 'mid' : 'low';
    const tokens =
      used === null
        ? 'context: not reported'
        : `context: ${used.toLocaleString('en-US')}${window ? ` of ${window.toLocaleString('en-US')}` : ''} tokens` +
          (window ? ` (${(share * 100).toFixed(1)}%)` : '');
    this.text.textContent = `${tokens} · this chat ${cost(message.chat_cost)} · session ${cost(message.session_cost)}`;
    const parts = PARTS.map(([key, label]) => `${label} ~${(message.parts[key] ?? 0).toLocaleString('en-US')}`);
    this.detail.textContent = `last message (estimated): ${parts.join(', ')}`;
    this.node.title = `${message.model}: tokens used by the last request, as the server reported them. ` +
      'Costs are the same totals as %kimi usage (sidebar row, and the session total).';
    this.node.hidden = false;
    this.node.dataset.updates = String(++this.updates); // how many turns it has counted
  }

  clear(): void {
    this.node.hidden = true;
  }

  private updates = 0;
  private bar = document.createElement('div');
  private fill = document.createElement('div');
  private text = document.createElement('div');
  private detail = document.createElement('div');
}
