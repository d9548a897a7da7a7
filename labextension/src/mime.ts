/**
 * A MIME renderer for `application/vnd.kimi.response+json` (a saved
 * `Response.summary()` plus `meta`), so a `%%kimi` answer stays rich after
 * the notebook is reopened: Markdown answer, folded reasoning, tool steps,
 * usage, and code blocks with Copy, Insert below and Run below. Frontends
 * without this extension show the html/markdown/plain fallbacks of the same bundle.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { outputCodeActions } from './codeactions';
import { markdownRenderer } from './markdown';
import { ISavedResponse, RESPONSE_MIME } from './protocol';
import { TurnState } from './turn';
import { TurnView } from './view';

export class ResponseRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('jp-kimi-rendered');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[this.options.mimeType] as unknown as ISavedResponse | undefined;
    if (!data || typeof data !== 'object') {
      this.node.textContent = 'kimi: empty response';
      return;
    }
    const view = new TurnView({
      renderMarkdown: markdownRenderer(this.options),
      codeActions: outputCodeActions(this.node)
    });
    view.update(TurnState.fromSummary(data, data.meta));
    this.node.replaceChildren(view.node);
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [RESPONSE_MIME],
  defaultRank: 10,
  createRenderer: options => new ResponseRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'kimi-jupyter:response-renderer',
  description: 'Renders saved Kimi responses (answer, reasoning, tool steps, usage).',
  rendererFactory,
  rank: 10,
  dataType: 'json'
};

export default extension;
