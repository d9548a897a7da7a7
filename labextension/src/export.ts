/**
 * The sidebar's Export: the kernel writes this chat as Markdown or a notebook
 * (`kimi_jupyter/export.py`, the same as `%kimi export --sidebar`), and the
 * browser downloads it. The API key is redacted by the kernel; model text is
 * escaped there, so the file shows it as text wherever it is opened.
 */
import { UUID } from '@lumino/coreutils';

import { KernelBridge } from './bridge';
import { KernelMessage } from './protocol';
import { button } from './view';

function download(filename: string, content: string, mime: string): void {
  const url = URL.createObjectURL(new Blob([content], { type: mime }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.style.display = 'none';
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** "Export: Markdown | Notebook" for one chat. */
export function exportBar(bridge: KernelBridge): HTMLElement {
  const node = document.createElement('div');
  node.className = 'jp-kimi-export';
  const status = document.createElement('span');
  status.className = 'jp-kimi-export-status';
  const waiting = new Set<string>();
  bridge.received.connect((_, message: KernelMessage) => {
    if (message.type !== 'export' || !waiting.delete(message.request_id)) {
      return;
    }
    if (message.error) {
      status.textContent = message.error;
      return;
    }
    status.textContent = '';
    download(message.filename, message.content, message.mime);
  });
  const ask = (format: 'md' | 'ipynb') => {
    const id = UUID.uuid4();
    waiting.add(id);
    status.textContent = '';
    void bridge.send({ action: 'export', request_id: id, format }).then(sent => {
      if (!sent) {
        waiting.delete(id);
        status.textContent = 'Not connected to the kernel.';
      }
    });
  };
  node.append(
    document.createTextNode('Export chat: '),
    button('Markdown', 'Download this chat as Markdown (.md)', () => ask('md')),
    button('Notebook', 'Download this chat as a notebook (.ipynb)', () => ask('ipynb')),
    status
  );
  return node;
}
