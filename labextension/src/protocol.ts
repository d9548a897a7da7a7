/**
 * The JSON spoken over the `kimi_jupyter.chat` comm and stored in the
 * `application/vnd.kimi.response+json` MIME bundle.
 *
 * A hand-kept mirror of `kimi_jupyter/sidebar/protocol.py` (interface
 * `I<Name>` for each TypedDict there) and of the event dataclasses of
 * `kimi_jupyter/events.py` (`I<Class>Event`; `event_to_json` sends the
 * fields plus `type`, the class name). Keep one field per line:
 * `tests/test_protocol_golden.py` checks that every message, field and event
 * is here with the same optionality, and `test/turn.test.ts` folds the
 * golden turns of `tests/golden/turns/` exactly as Python does.
 */

export const COMM_TARGET = 'kimi_jupyter.chat';
export const RESPONSE_MIME = 'application/vnd.kimi.response+json';
/** `Failed.kind` and `error_kind` of a turn the user stopped. */
export const INTERRUPTED_KIND = 'Interrupted';

// -- the pieces -------------------------------------------------------------

/**
 * `events.Usage` as JSON. `cost` is null when unknown, or when the turn's
 * requests were priced in two currencies (then see `costs`).
 */
export interface IUsageJSON {
  prompt: number | null;
  completion: number | null;
  cached: number | null;
  reasoning: number | null;
  total: number | null;
  cost: number | null;
  currency: string | null;
  reported: boolean;
  note?: string;
  /** Prompt tokens written to the provider's prompt cache (only when reported). */
  cache_write?: number;
}

/** `response.ToolStep` as JSON (`seconds` is left out of saved bundles). */
export interface IToolStepJSON {
  id: string;
  name: string;
  arguments: string;
  state: string;
  result: string | null;
  error: string | null;
  seconds: number | null;
  approved: boolean | null;
  /** What the model reasoned in the request that asked for this call. */
  reasoning: string;
}

/** `display.base.TurnMeta` as JSON. */
export interface ITurnMetaJSON {
  model: string;
  thinking: boolean;
  provider: string | null;
  context_window: number | null;
  title: string | null;
  /** Thinking effort sent (models with effort levels); absent otherwise. */
  effort?: string;
}

/** `Response.summary()`: the final snapshot of a turn. */
export interface IResponseSummary {
  model: string | null;
  text: string;
  reasoning: string;
  notices: string[];
  tool_steps: IToolStepJSON[];
  usage: IUsageJSON;
  /** Total cost per currency code ("" for a cost without one). */
  costs: Record<string, number>;
  finish_reason: string | null;
  cut: boolean;
  error: string | null;
  /** `Failed.kind`: 'Interrupted', 'StreamCutError', 'BudgetExceeded', ... */
  error_kind: string | null;
}

/** The MIME bundle a `%%kimi` cell saves. */
export interface ISavedResponse extends IResponseSummary {
  meta: ITurnMetaJSON;
}

// -- events (kimi_jupyter/events.py) ----------------------------------------

export interface IReasoningDeltaEvent {
  type: 'ReasoningDelta';
  text: string;
}

export interface ITextDeltaEvent {
  type: 'TextDelta';
  text: string;
}

export interface IToolCallRequestedEvent {
  type: 'ToolCallRequested';
  id: string;
  name: string;
  arguments: string;
  index?: number;
}

export interface IToolCallStartedEvent {
  type: 'ToolCallStarted';
  id: string;
  name: string;
  arguments: string;
}

export interface IToolCallFinishedEvent {
  type: 'ToolCallFinished';
  id: string;
  result: string;
  error?: string | null;
  seconds?: number;
}

export interface IApprovalRequestedEvent {
  type: 'ApprovalRequested';
  id: string;
  name: string;
  code: string;
}

export interface IApprovalResolvedEvent {
  type: 'ApprovalResolved';
  id: string;
  approved: boolean;
  how?: string;
}

export interface IUsageEvent {
  type: 'Usage';
  prompt?: number | null;
  completion?: number | null;
  cached?: number | null;
  reasoning?: number | null;
  total?: number | null;
  cost?: number | null;
  currency?: string | null;
  reported?: boolean;
  note?: string;
  cache_write?: number;
}

/** Why a request failed, as data (kimi_jupyter.events.Cause). */
export interface IFailureCause {
  kind: string;
  status: number | null;
  retry_after: number | null;
  billed: boolean;
  throttle: boolean;
}

export interface IRetryingEvent {
  type: 'Retrying';
  attempt: number;
  wait: number;
  reason: string;
  cause?: IFailureCause;
}

export interface INoticeEvent {
  type: 'Notice';
  text: string;
  level?: string;
}

export interface IDoneEvent {
  type: 'Done';
  finish_reason: string | null;
  cut?: boolean;
}

export interface IFailedEvent {
  type: 'Failed';
  error: string;
  kind?: string;
  partial?: boolean;
  extra?: Record<string, unknown>;
  cause?: IFailureCause;
}

export type KimiEvent =
  | IReasoningDeltaEvent
  | ITextDeltaEvent
  | IToolCallRequestedEvent
  | IToolCallStartedEvent
  | IToolCallFinishedEvent
  | IApprovalRequestedEvent
  | IApprovalResolvedEvent
  | IUsageEvent
  | IRetryingEvent
  | INoticeEvent
  | IDoneEvent
  | IFailedEvent;

// -- frontend -> kernel -----------------------------------------------------

export interface IHelloRequest {
  action: 'hello';
}

export interface IModelsRequest {
  action: 'models';
}

/** The context gauge, asked after each done (the usage ledger has the turn by then). */
export interface IGaugeRequest {
  action: 'gauge';
}

export interface IResetRequest {
  action: 'reset';
}

/** The sidebar's Export button: this chat as a file (`kimi_jupyter/export.py`). */
export interface IExportRequest {
  action: 'export';
  request_id: string;
  format: 'md' | 'ipynb';
}

export interface ICellAttachment {
  kind: 'cell';
  source: string;
  outputs: string;
  label?: string;
}

export interface IImageAttachment {
  kind: 'image';
  mime: string;
  /** base64 */
  data: string;
  label?: string;
}

/** A file the user picked in the file browser: a path relative to the notebook's folder
 * (the kernel's working directory). The kernel sends a document as its extracted text, an
 * image or video as media (through the Files API when big). */
export interface IFileAttachment {
  kind: 'file';
  path: string;
  label?: string;
}

export type Attachment = ICellAttachment | IImageAttachment | IFileAttachment;

export interface IAskOptions {
  model?: string;
  /** Thinking effort (low / high / max) for a model that has effort levels. */
  effort?: string;
  thinking?: boolean;
  agent?: boolean;
  /** Partial mode: the answer starts with this text. */
  prefill?: string;
}

export interface IAskRequest {
  action: 'ask';
  request_id: string;
  prompt: string;
  attachments?: Attachment[];
  options?: IAskOptions;
}

export interface IApproveRequest {
  action: 'approve';
  id: string;
  approved: boolean;
}

export type FrontendMessage =
  | IHelloRequest
  | IModelsRequest
  | IGaugeRequest
  | IResetRequest
  | IAskRequest
  | IApproveRequest
  | IExportRequest;

// -- kernel -> frontend -----------------------------------------------------

/** What the kernel says about itself (never the key). */
export interface IHelloReply {
  type: 'hello';
  version: string;
  has_key: boolean;
  error: string | null;
  model?: string;
  provider?: string;
  base_url?: string;
  thinking?: boolean;
}

export interface IStartMessage {
  type: 'start';
  request_id: string;
  meta: ITurnMetaJSON;
}

export interface IEventMessage {
  type: 'event';
  request_id: string;
  event: KimiEvent;
}

/** The rate limits the server announced last (`ratelimit.RateLimits.status`). */
export interface IRateLimits {
  text: string;
  low: boolean;
  remaining_requests?: number | null;
  limit_requests?: number | null;
  remaining_tokens?: number | null;
  limit_tokens?: number | null;
}

export interface IDoneMessage {
  type: 'done';
  request_id: string;
  response: IResponseSummary;
  meta: ITurnMetaJSON;
  rate_limits?: IRateLimits | null;
}

export interface IModelsReply {
  type: 'models';
  models: string[];
  current: string | null;
  error: string | null;
  /** The effort levels of the models that have them (the model registry). */
  efforts?: { [model: string]: string[] };
}

export interface IResetReply {
  type: 'reset';
}

export interface IErrorMessage {
  type: 'error';
  message: string;
  request_id?: string | null;
}

/** The export's content for the browser to download (`error` when it failed). */
export interface IExportReply {
  type: 'export';
  request_id: string;
  filename: string;
  mime: string;
  content: string;
  error: string | null;
}

export interface IGaugeCost {
  cost: number | null;
  currency: string | null;
}

/** After each turn: the context window, what the last request used, and the costs. */
export interface IGaugeMessage {
  type: 'gauge';
  model: string;
  window: number | null;
  used: number | null;
  /** Estimated tokens: system, history, attachments, message. */
  parts: { [part: string]: number };
  chat_cost: IGaugeCost;
  session_cost: IGaugeCost;
}

export type KernelMessage =
  | IHelloReply
  | IStartMessage
  | IEventMessage
  | IDoneMessage
  | IGaugeMessage
  | IModelsReply
  | IResetReply
  | IExportReply
  | IErrorMessage;
