/**
 * The link between one notebook's kernel and the sidebar: a comm to the
 * `kimi_jupyter.chat` target.
 *
 * Opening sends `{"action": "hello"}`. When the kernel has no such target it
 * closes the comm at once; the bridge then runs `%load_ext kimi_jupyter`
 * silently in that kernel and tries again. A kernel that cannot import the
 * package, a kernel restart and a kernel switch all end in a clear status.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import type { CommsOverSubshells } from '@jupyterlab/services';
import { Kernel } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { COMM_TARGET, FrontendMessage, IHelloReply, KernelMessage } from './protocol';

export type BridgeStatus =
  | { kind: 'no-kernel' }
  | { kind: 'connecting' }
  | { kind: 'loading' }
  | { kind: 'not-installed'; detail: string }
  | { kind: 'ready'; hello: IHelloReply }
  | { kind: 'error'; message: string };

export const NOT_INSTALLED =
  'kimi_jupyter is not installed in this kernel: pip install kimi-jupyter';
const LOAD_CODE = '%load_ext kimi_jupyter';
/**
 * Send this comm's messages to the kernel's main shell, not to a subshell.
 *
 * JupyterLab 4.4+ routes comms to a kernel subshell (a thread) when the kernel
 * supports them (ipykernel 7 with IPython 9). A chat turn must run on the main
 * shell: SIGINT, which is what Stop sends, only interrupts the main thread; the
 * agent's approval wait and its run_python steps assume they hold the shell; and
 * a turn must not race the cells it reads. Older JupyterLabs have no such
 * setting and always use the main shell.
 */
export function keepOnMainShell(comm: Kernel.IComm): void {
  if ('commsOverSubshells' in comm) {
    // The enum's value, not the enum: JupyterLabs before 4.4 do not export it.
    comm.commsOverSubshells = 'disabled' as CommsOverSubshells;
  }
}

/** How long an idle kernel may take to answer `hello` (a busy one may take any time). */
const HELLO_TIMEOUT_MS = 20000;

type OpenOutcome = IHelloReply | 'closed' | 'timeout';

export class KernelBridge implements IDisposable {
  constructor(readonly sessionContext: ISessionContext) {
    sessionContext.kernelChanged.connect(this.onKernelChanged, this);
    sessionContext.statusChanged.connect(this.onKernelStatus, this);
  }

  get status(): BridgeStatus {
    return this._status;
  }

  get statusChanged(): ISignal<this, BridgeStatus> {
    return this._statusChanged;
  }

  /** Every message the kernel sends on the comm after `hello`. */
  get received(): ISignal<this, KernelMessage> {
    return this._received;
  }

  /** The chat comm's id: a sidebar turn's notebook link matches it. */
  get commId(): string | null {
    return this.comm && !this.comm.isDisposed ? this.comm.commId : null;
  }

  get kernel(): Kernel.IKernelConnection | null {
    return this.sessionContext.session?.kernel ?? null;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Open the comm (loading kimi_jupyter when needed); true when ready. */
  connect(): Promise<boolean> {
    this.wanted = true;
    if (this.comm && !this.comm.isDisposed && this._status.kind === 'ready') {
      return Promise.resolve(true);
    }
    if (!this.connecting) {
      this.connecting = this.doConnect().finally(() => (this.connecting = null));
    }
    return this.connecting;
  }

  async send(message: FrontendMessage): Promise<boolean> {
    if (!(await this.connect()) || !this.comm) {
      return false;
    }
    this.comm.send(message as unknown as JSONObject);
    return true;
  }

  /** Stop a running turn: the kernel turns the interrupt into an `Interrupted` event. */
  async interrupt(): Promise<void> {
    await this.kernel?.interrupt();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.dropComm(true);
    Signal.clearData(this);
  }

  private async doConnect(): Promise<boolean> {
    await this.sessionContext.ready;
    const kernel = this.kernel;
    if (!kernel || this._disposed) {
      this.setStatus({ kind: 'no-kernel' });
      return false;
    }
    this.setStatus({ kind: 'connecting' });
    let outcome = await this.open(kernel);
    if (outcome === 'closed') {
      this.setStatus({ kind: 'loading' });
      const problem = await this.loadExtension(kernel);
      if (problem) {
        this.setStatus({ kind: 'not-installed', detail: problem });
        return false;
      }
      outcome = await this.open(kernel);
    }
    if (kernel !== this.kernel) {
      return false; // the notebook switched kernels meanwhile; onKernelChanged reconnects
    }
    if (outcome === 'closed') {
      this.setStatus({
        kind: 'error',
        message:
          'kimi_jupyter is loaded in this kernel but has no sidebar support. ' +
          'Upgrade it (pip install -U kimi-jupyter) and restart the kernel.'
      });
      return false;
    }
    if (outcome === 'timeout') {
      this.setStatus({
        kind: 'error',
        message: 'The kernel did not answer. Interrupt or restart it, then try again.'
      });
      return false;
    }
    this.setStatus({ kind: 'ready', hello: outcome });
    return true;
  }

  private open(kernel: Kernel.IKernelConnection): Promise<OpenOutcome> {
    return new Promise<OpenOutcome>(resolve => {
      let settled = false;
      let timer = 0;
      const settle = (outcome: OpenOutcome) => {
        if (!settled) {
          settled = true;
          window.clearTimeout(timer);
          resolve(outcome);
        }
      };
      const arm = () => {
        timer = window.setTimeout(() => {
          // A busy kernel answers when its cell ends: keep waiting for it.
          if (kernel.status === 'busy' || kernel.status === 'starting') {
            arm();
          } else {
            settle('timeout');
          }
        }, HELLO_TIMEOUT_MS);
      };
      let comm: Kernel.IComm;
      try {
        comm = kernel.createComm(COMM_TARGET);
        keepOnMainShell(comm);
      } catch (error) {
        settle('timeout');
        return;
      }
      comm.onMsg = msg => {
        const data = msg.content.data as unknown as KernelMessage;
        if (data.type === 'hello') {
          if (!settled) {
            this.dropComm(true);
            this.comm = comm;
            settle(data);
            return;
          }
          if (this.comm === comm) {
            this.setStatus({ kind: 'ready', hello: data });
          }
        }
        if (this.comm === comm) {
          this._received.emit(data);
        }
      };
      comm.onClose = () => {
        if (this.comm === comm) {
          this.comm = null;
          this.setStatus({ kind: 'connecting' });
        }
        settle('closed');
      };
      try {
        comm.open({ action: 'hello' });
      } catch (error) {
        settle('timeout');
        return;
      }
      arm();
    });
  }

  /** Run `%load_ext kimi_jupyter`; returns what went wrong, or null. */
  private async loadExtension(kernel: Kernel.IKernelConnection): Promise<string | null> {
    try {
      const info = await kernel.info;
      const language = info.language_info?.name ?? '';
      if (language && language.toLowerCase() !== 'python') {
        return `This is a ${language} kernel; the Kimi chat needs a Python kernel with kimi_jupyter installed.`;
      }
      const future = kernel.requestExecute(
        {
          code: LOAD_CODE,
          silent: true,
          store_history: false,
          allow_stdin: false,
          stop_on_error: false // never abort the user's queued cells
        },
        true
      );
      const reply = await future.done;
      const content = reply.content;
      if (content.status === 'ok') {
        return null;
      }
      if (content.status === 'error') {
        const missing =
          content.ename === 'ModuleNotFoundError' && content.evalue.includes('kimi_jupyter');
        return missing
          ? NOT_INSTALLED
          : `Loading kimi_jupyter failed: ${content.ename}: ${content.evalue}`;
      }
      return 'Loading kimi_jupyter was aborted by the kernel.';
    } catch (error) {
      return `Loading kimi_jupyter failed: ${String(error)}`;
    }
  }

  private onKernelChanged(): void {
    this.dropComm(false);
    this.setStatus(this.kernel ? { kind: 'connecting' } : { kind: 'no-kernel' });
    // Only a chat the user has opened reconnects by itself: merely opening a notebook
    // must not load kimi_jupyter into its kernel.
    if (this.kernel && this.wanted) {
      void this.connect();
    }
  }

  private onKernelStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      // The process is gone: its comm target too. Reconnect once it is back.
      this.dropComm(false);
      this.reconnect = true;
      this.setStatus(status === 'dead' ? { kind: 'no-kernel' } : { kind: 'connecting' });
    } else if (status === 'idle' && this.reconnect && this.wanted) {
      this.reconnect = false;
      void this.connect();
    }
  }

  private dropComm(close: boolean): void {
    const comm = this.comm;
    this.comm = null;
    if (comm && !comm.isDisposed) {
      if (close) {
        try {
          comm.close();
        } catch (error) {
          comm.dispose();
        }
      } else {
        comm.dispose();
      }
    }
  }

  private setStatus(status: BridgeStatus): void {
    this._status = status;
    this._statusChanged.emit(status);
  }

  private comm: Kernel.IComm | null = null;
  private connecting: Promise<boolean> | null = null;
  private reconnect = false;
  private wanted = false;
  private _disposed = false;
  private _status: BridgeStatus = { kind: 'connecting' };
  private _statusChanged = new Signal<this, BridgeStatus>(this);
  private _received = new Signal<this, KernelMessage>(this);
}
