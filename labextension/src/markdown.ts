/**
 * Model Markdown to DOM under the one rendering policy of kimi-jupyter (the
 * Python side is `kimi_jupyter/display/untrusted.py`): model text is untrusted.
 *
 * - Raw HTML in model text is shown as text: markdown-it parses with HTML off,
 *   so `<img src=...>` stays the literal characters.
 * - Nothing is fetched because of model text: a Markdown image becomes the
 *   words `image: alt (URL)` with the URL as a plain link, never an `<img>`.
 * - Links keep only http, https and mailto, checked after entity and backslash
 *   decoding (markdown-it's `validateLink` hook sees the decoded destination of
 *   inline, reference-style and autolinks); anything else stays plain text.
 * - Math is cut out first and put back as escaped text (JupyterLab's own
 *   `removeMath`/`replaceMath`) so MathJax typesets it.
 *
 * The HTML string is then checked in an inert document (DOMParser loads
 * nothing): only the tags and attributes markdown-it produces survive, and
 * every href must pass the scheme check. JupyterLab's sanitizer runs after
 * that (untrusted rendering), and code blocks are highlighted by JupyterLab's
 * Markdown parser where one is registered (its output is checked the same way).
 *
 * The chat sidebar (raw model text from the kernel) and the MIME renderer of
 * saved answers (the text stored in the notebook, which may have been edited)
 * both render through here, so the policy is applied once per surface.
 */
import { IRenderMimeRegistry, removeMath, renderHTML, replaceMath } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import MarkdownIt from 'markdown-it';

import { MarkdownRenderer } from './view';

type MarkdownOptions = Pick<
  IRenderMime.IRendererOptions,
  'sanitizer' | 'resolver' | 'linkHandler' | 'latexTypesetter' | 'markdownParser' | 'translator'
>;

const ALLOWED_SCHEME = /^(https?|mailto):/i;

/** True for an absolute http, https or mailto URL (already entity-decoded). */
export function linkAllowed(url: string): boolean {
  return ALLOWED_SCHEME.test(url.trim());
}

const md = new MarkdownIt('commonmark', { html: false, linkify: false, typographer: false });
md.enable(['table', 'strikethrough']);
md.validateLink = linkAllowed;
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const alt = self.renderInlineAsText(token.children ?? [], options, env);
  const src = md.utils.escapeHtml(token.attrGet('src') ?? '');
  return `image: ${md.utils.escapeHtml(alt)} (<a href="${src}" rel="noopener noreferrer nofollow">${src}</a>)`;
};

/** Tags markdown-it can produce from model text, with the attributes each may keep. */
const ALLOWED_TAGS: Record<string, string[]> = {
  a: ['href', 'title'],
  blockquote: [],
  br: [],
  code: ['class'],
  del: [],
  em: [],
  h1: [],
  h2: [],
  h3: [],
  h4: [],
  h5: [],
  h6: [],
  hr: [],
  li: [],
  ol: ['start'],
  p: [],
  pre: [],
  s: [],
  strong: [],
  table: [],
  tbody: [],
  td: ['style'],
  th: ['style'],
  thead: [],
  tr: [],
  ul: []
};

/**
 * Enforce the policy on a parsed tree: unknown elements become their text,
 * unknown attributes go, links with another scheme become their text.
 */
export function enforcePolicy(root: Element): void {
  for (const node of Array.from(root.querySelectorAll('*'))) {
    const tag = node.tagName.toLowerCase();
    const allowed = ALLOWED_TAGS[tag];
    const href = tag === 'a' ? node.getAttribute('href') ?? '' : '';
    if (!allowed || (tag === 'a' && !linkAllowed(href))) {
      node.replaceWith(node.ownerDocument.createTextNode(node.textContent ?? ''));
      continue;
    }
    for (const attr of Array.from(node.attributes)) {
      const name = attr.name.toLowerCase();
      const keep =
        allowed.includes(name) &&
        (name !== 'style' || /^text-align:(left|right|center)$/.test(attr.value)) &&
        (name !== 'class' || /^language-[\w+#.-]+$/.test(attr.value));
      if (!keep) {
        node.removeAttribute(attr.name);
      }
    }
    if (tag === 'a') {
      node.setAttribute('rel', 'noopener noreferrer nofollow');
      node.setAttribute('target', '_blank');
    }
  }
}

/** `html` checked in an inert document (nothing loads there) and serialized again. */
function policed(html: string): string {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
  enforcePolicy(doc.body);
  return doc.body.innerHTML;
}

/** Model Markdown as policy-checked HTML (math left as escaped text for MathJax). */
export function untrustedMarkdownToHTML(source: string): string {
  const { text, math } = removeMath(source);
  return policed(replaceMath(md.render(text), math));
}

/** Replace the text of highlightable code blocks with the parser's highlighting, checked. */
async function highlightCode(host: HTMLElement, parser: IRenderMime.IMarkdownParser): Promise<void> {
  const blocks = Array.from(host.querySelectorAll('pre > code[class^="language-"]'));
  for (const code of blocks) {
    const language = code.className.slice('language-'.length);
    const text = code.textContent ?? '';
    if (!language || text.length > 20000) {
      continue;
    }
    const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map(run => run.length));
    const fence = '`'.repeat(Math.max(3, longest + 1));
    const html = await parser.render(`${fence}${language}\n${text}${text.endsWith('\n') ? '' : '\n'}${fence}`);
    const doc = new DOMParser().parseFromString(html, 'text/html');
    const highlighted = doc.querySelector('pre > code');
    const shown = highlighted?.textContent ?? null;
    if (!highlighted || (shown !== text && shown !== text.replace(/\n$/, ''))) {
      continue;
    }
    // Only plain spans with class names may come back: anything else keeps the plain text.
    const parts = Array.from(highlighted.querySelectorAll('*'));
    const plain = parts.every(
      el => el.tagName === 'SPAN' && Array.from(el.attributes).every(attr => attr.name === 'class')
    );
    if (plain && code.isConnected) {
      code.replaceChildren(...Array.from(highlighted.childNodes).map(n => document.importNode(n, true)));
    }
  }
}

export function markdownRenderer(options: MarkdownOptions): MarkdownRenderer {
  return async (host, source) => {
    await renderHTML({
      host,
      source: untrustedMarkdownToHTML(source),
      trusted: false,
      sanitizer: options.sanitizer,
      resolver: options.resolver ?? null,
      linkHandler: options.linkHandler ?? null,
      latexTypesetter: options.latexTypesetter ?? null,
      shouldTypeset: true,
      translator: options.translator
    });
    // The sanitizer and the resolver may rewrite links: check the live anchors once more.
    host.querySelectorAll('a').forEach(a => {
      if (!linkAllowed(a.getAttribute('href') ?? '')) {
        a.replaceWith(document.createTextNode(a.textContent ?? ''));
      }
    });
    if (options.markdownParser) {
      try {
        await highlightCode(host, options.markdownParser);
      } catch {
        // Highlighting is a nicety: the plain code is already shown.
      }
    }
  };
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
