/**
 * Context from the notebook: the active cell (source and text outputs) and the
 * plot or image it displayed, as comm attachments.
 */
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { PathExt } from '@jupyterlab/coreutils';
import * as nbformat from '@jupyterlab/nbformat';
import { NotebookPanel } from '@jupyterlab/notebook';

import { Attachment, ICellAttachment, IImageAttachment } from './protocol';

/** Opens a file-browser dialog; resolves to the picked paths (server-root relative). */
export type PickFiles = () => Promise<string[]>;

const FILE_TYPES = [
  '.pdf', '.docx', '.xlsx', '.pptx', '.txt', '.md',
  '.png', '.jpg', '.jpeg', '.gif', '.webp',
  '.mp4', '.m4v', '.mpeg', '.mpg', '.mov', '.avi', '.flv', '.webm', '.wmv', '.3gp', '.3gpp'
];

/** File attachments for the paths the user picked, relative to the notebook's folder
 * (where the kernel runs), or why none could be attached. */
export async function fileAttachments(panel: NotebookPanel, pick: PickFiles): Promise<Attachment[] | string> {
  const paths = await pick();
  const folder = PathExt.dirname(panel.context.localPath);
  const accepted = paths.filter(path => FILE_TYPES.includes(PathExt.extname(path).toLowerCase()));
  if (paths.length && !accepted.length) {
    return 'Pick a document (pdf, docx, xlsx, pptx, txt, md), an image or a video.';
  }
  return accepted.map(path => ({
    kind: 'file' as const,
    path: PathExt.relative(folder, path),
    label: PathExt.basename(path)
  }));
}

const MAX_OUTPUT_CHARS = 20000;
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

function multiline(value: nbformat.MultilineString | undefined): string {
  return Array.isArray(value) ? value.join('') : value ?? '';
}

function outputsOf(cell: Cell): nbformat.IOutput[] {
  if (cell.model.type !== 'code') {
    return [];
  }
  const outputs = (cell.model as ICodeCellModel).outputs;
  const list: nbformat.IOutput[] = [];
  for (let i = 0; i < outputs.length; i++) {
    list.push(outputs.get(i).toJSON());
  }
  return list;
}

/** The text a user reads in an output: streams, text/plain, error names. */
function outputText(output: nbformat.IOutput): string {
  if (nbformat.isStream(output)) {
    return multiline(output.text);
  }
  if (nbformat.isError(output)) {
    return `${output.ename}: ${output.evalue}\n`;
  }
  if (nbformat.isExecuteResult(output) || nbformat.isDisplayData(output)) {
    const data = output.data as nbformat.IMimeBundle;
    const plain = multiline(data['text/plain'] as nbformat.MultilineString | undefined);
    if (plain) {
      return plain.endsWith('\n') ? plain : plain + '\n';
    }
    const image = IMAGE_TYPES.find(mime => mime in data);
    return image ? `[${image} output]\n` : '';
  }
  return '';
}

function cellLabel(cell: Cell): string {
  const count =
    cell.model.type === 'code' ? (cell.model as ICodeCellModel).executionCount : null;
  return count ? `cell [${count}]` : `${cell.model.type} cell`;
}

export function activeCell(panel: NotebookPanel | null): Cell | null {
  return panel?.content.activeCell ?? null;
}

export function cellAttachment(cell: Cell): ICellAttachment {
  let outputs = outputsOf(cell).map(outputText).join('');
  if (outputs.length > MAX_OUTPUT_CHARS) {
    outputs = outputs.slice(0, MAX_OUTPUT_CHARS) + '\n[output truncated]\n';
  }
  return {
    kind: 'cell',
    source: cell.model.sharedModel.getSource(),
    outputs,
    label: cellLabel(cell)
  };
}

/** The last image the cell displayed (a plot), or null. */
export function imageAttachment(cell: Cell): IImageAttachment | null {
  const outputs = outputsOf(cell);
  for (let i = outputs.length - 1; i >= 0; i--) {
    const output = outputs[i];
    if (!nbformat.isExecuteResult(output) && !nbformat.isDisplayData(output)) {
      continue;
    }
    const data = output.data as nbformat.IMimeBundle;
    const mime = IMAGE_TYPES.find(type => typeof data[type] === 'string' || Array.isArray(data[type]));
    if (mime) {
      const base64 = multiline(data[mime] as nbformat.MultilineString).replace(/\s+/g, '');
      return { kind: 'image', mime, data: base64, label: `plot from ${cellLabel(cell)}` };
    }
  }
  return null;
}
