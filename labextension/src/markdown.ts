/**
 * Markdown through JupyterLab's own pipeline (its parser highlights code
 * blocks; the sanitizer treats model text as untrusted data).
 */
import { IRenderMimeRegistry, renderMarkdown } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { MarkdownRenderer } from './view';

type MarkdownOptions = Pick<
  IRenderMime.IRendererOptions,
  'sanitizer' | 'resolver' | 'linkHandler' | 'latexTypesetter' | 'markdownParser' | 'translator'
>;

export function markdownRenderer(options: MarkdownOptions): MarkdownRenderer {
  return (host, source) =>
    renderMarkdown({
      host,
      source,
      trusted: false,
      sanitizer: options.sanitizer,
      resolver: options.resolver ?? null,
      linkHandler: options.linkHandler ?? null,
      latexTypesetter: options.latexTypesetter ?? null,
      markdownParser: options.markdownParser ?? null,
      shouldTypeset: true,
      translator: options.translator
    });
}

export function registryMarkdown(registry: IRenderMimeRegistry): MarkdownRenderer {
  return markdownRenderer({
    sanitizer: registry.sanitizer,
    resolver: registry.resolver,
    linkHandler: registry.linkHandler,
    latexTypesetter: registry.latexTypesetter,
    markdownParser: registry.markdownParser
  });
}
