/**
 * The JSON spoken over the `kimi_jupyter.chat` comm and stored in the
 * `application/vnd.kimi.response+json` MIME bundle.
 *
 * Events mirror `kimi_jupyter/events.py` (`event_to_json`: the dataclass
 * fields plus `type`, the class name). A response summary mirrors
 * `Response.summary()`; `meta` mirrors `display.base.TurnMeta`.
 */

export const COMM_TARGET = 'kimi_jupyter.chat';
export const RESPONSE_MIME = 'application/vnd.kimi.response+json';

export interface IUsage {
  prompt?: number | null;
  completion?: number | null;
  cached?: number | null;
  reasoning?: number | null;
  total?: number | null;
  cost?: number | null;
  currency?: string | null;
  reported?: boolean;
}

export interface IToolStep {
  id: string;
  name: string;
  arguments: string;
  state: string;
  result?: string | null;
  error?: string | null;
  seconds?: number | null;
  approved?: boolean | null;
}

export interface ITurnMeta {
  model?: string | null;
  thinking?: boolean | null;
  provider?: string | null;
  context_window?: number | null;
  title?: string | null;
}

export interface IResponseSummary {
  model?: string | null;
  text: string;
  reasoning: string;
  notices?: string[];
  tool_steps: IToolStep[];
  usage: IUsage;
  finish_reason?: string | null;
  cut?: boolean;
  error?: string | null;
  meta?: ITurnMeta;
}

export type KimiEvent =
  | { type: 'ReasoningDelta'; text: string }
  | { type: 'TextDelta'; text: string }
  | { type: 'ToolCallRequested'; id: string; name: string; arguments: string }
  | { type: 'ToolCallStarted'; id: string; name: string; arguments: string }
  | {
      type: 'ToolCallFinished';
      id: string;
      result: string;
      error?: string | null;
      seconds?: number;
    }
  | { type: 'ApprovalRequested'; id: string; name: string; code: string }
  | { type: 'ApprovalResolved'; id: string; approved: boolean; how?: string }
  | ({ type: 'Usage' } & IUsage)
  | { type: 'Retrying'; attempt: number; wait: number; reason: string }
  | { type: 'Notice'; text: string; level?: string }
  | { type: 'Done'; finish_reason?: string | null; cut?: boolean }
  | { type: 'Failed'; error: string; kind?: string; partial?: boolean };

/** What the kernel says about itself (never the key). */
export interface IHello {
  type: 'hello';
  version?: string;
  model?: string;
  provider?: string;
  base_url?: string;
  has_key: boolean;
  thinking?: boolean | null;
  error?: string | null;
}

export type KernelMessage =
  | IHello
  | { type: 'start'; request_id: string; meta: ITurnMeta }
  | { type: 'event'; request_id: string; event: KimiEvent }
  | {
      type: 'done';
      request_id: string;
      response: IResponseSummary;
      meta?: ITurnMeta;
    }
  | { type: 'models'; models: string[]; current: string | null; error: string | null }
  | { type: 'reset' }
  | { type: 'error'; message: string; request_id?: string }
  // [export hook] the sidebar's Export (export.ts)
  | { type: 'export'; request_id: string; filename: string; mime: string; content: string; error: string | null };

export interface ICellAttachment {
  kind: 'cell';
  source: string;
  outputs: string;
  label?: string;
}

export interface IImageAttachment {
  kind: 'image';
  mime: string;
  data: string;
  label?: string;
}

export type Attachment = ICellAttachment | IImageAttachment;

export type FrontendMessage =
  | { action: 'hello' }
  | { action: 'models' }
  | {
      action: 'ask';
      request_id: string;
      prompt: string;
      attachments: Attachment[];
      options: { model?: string; thinking?: boolean; agent?: boolean };
    }
  | { action: 'approve'; id: string; approved: boolean }
  | { action: 'export'; request_id: string; format: 'md' | 'ipynb' } // [export hook]
  | { action: 'reset' };
