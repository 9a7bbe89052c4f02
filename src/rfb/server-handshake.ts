import { VncgateError, type ErrorCode } from '../errors.js';
import { ByteQueue, ByteWriter } from './byte-queue.js';
import { LIMITS, PROTOCOL_VERSION_LENGTH, SECURITY_RESULT, SECURITY_TYPE, type RfbVersion } from './constants.js';
import { negotiatedVersion, parseVersion, versionBytes } from './version.js';
import { verifyVncAuthResponse } from './vnc-auth.js';

export type ServerSecurity = 'none' | 'vncauth';

export type ServerHandshakeOptions = {
  /** Types offered to the client, in preference order. The proxy offers only None. */
  security?: readonly ServerSecurity[];
  /** Password checked for VncAuth. */
  password?: Uint8Array;
  /** Source of the 16-byte VncAuth challenge (injected so the engine stays pure). */
  randomBytes?: (n: number) => Buffer;
};

export type ServerHandshakeInfo = {
  /** What the client announced, e.g. "003.008". */
  clientVersion: string;
  version: RfbVersion;
  security: ServerSecurity;
};

export type ServerAction =
  | { type: 'send'; bytes: Buffer }
  /** Security done on this side; `trailing` holds any client bytes already received (ClientInit…). */
  | { type: 'established'; info: ServerHandshakeInfo; trailing: Buffer }
  /** Stop: flush any preceding send, then close. */
  | { type: 'failed'; error: VncgateError };

type State = 'idle' | 'version' | 'preVerdict' | 'choice' | 'vncResponse' | 'verdict' | 'established' | 'failed';

const SERVER_SECURITY_TYPE = { none: SECURITY_TYPE.none, vncauth: SECURITY_TYPE.vncAuth } as const;

/**
 * The RFB server role, toward the browser: speaks 3.8 (accepts 3.3/3.7 clients), offers its
 * security types, then waits for the shell's verdict — accept() once the backend side is ready, or
 * reject(error) — and answers with SecurityResult. A 3.8 rejection carries error.publicReason,
 * which noVNC shows the user. 3.3/3.7 clients have no SecurityResult reason after None, so for them
 * the verdict is awaited before security negotiation and a failure is sent in its place.
 */
export class RfbServerHandshake {
  readonly #security: readonly ServerSecurity[];
  readonly #password: Uint8Array | undefined;
  readonly #randomBytes: ((n: number) => Buffer) | undefined;
  readonly #q = new ByteQueue();
  #state: State = 'idle';
  #version: RfbVersion = '3.8';
  #clientVersion = '';
  #chosen: ServerSecurity | null = null;
  #challenge: Buffer | null = null;
  #verdict: { ok: true } | { ok: false; error: VncgateError } | null = null;

  constructor(opts: ServerHandshakeOptions = {}) {
    const security = opts.security ?? ['none'];
    if (security.length === 0) throw new TypeError('server security list is empty');
    if (security.includes('vncauth') && (opts.password === undefined || opts.randomBytes === undefined)) {
      throw new TypeError('vncauth needs a password and a randomBytes source');
    }
    this.#security = [...security];
    this.#password = opts.password;
    this.#randomBytes = opts.randomBytes;
  }

  get state(): State {
    return this.#state;
  }

  get bufferedBytes(): number {
    return this.#q.length;
  }

  /** SecurityResult OK went out (or None under 3.3/3.7 needs none): initialisation follows. */
  get established(): boolean {
    return this.#state === 'established';
  }

  /** Whether accept() or reject() has been called. */
  get hasVerdict(): boolean {
    return this.#verdict !== null;
  }

  /** Our ProtocolVersion; the server speaks first (§7.1.1). */
  start(): ServerAction[] {
    if (this.#state !== 'idle') throw new Error('start() called twice');
    this.#state = 'version';
    return [{ type: 'send', bytes: versionBytes('3.8') }];
  }

  receive(chunk: Uint8Array): ServerAction[] {
    if (this.#state === 'idle') throw new Error('receive() before start()');
    if (this.#settled()) return [];
    this.#q.push(chunk);
    const out: ServerAction[] = [];
    this.#run(out);
    if (!this.#settled() && this.#q.length > LIMITS.maxHandshakeBufferBytes) {
      out.push(...this.#fail('RFB_ERR_CLIENT_PROTOCOL', 'client sent too much during the handshake'));
    }
    return out;
  }

  /** The session may proceed: answer SecurityResult OK as soon as the client is there. */
  accept(): ServerAction[] {
    return this.#setVerdict({ ok: true });
  }

  /** The session may not proceed: tell the client why (error.publicReason), then fail. */
  reject(error: VncgateError): ServerAction[] {
    return this.#setVerdict({ ok: false, error });
  }

  #settled(): boolean {
    return this.#state === 'established' || this.#state === 'failed';
  }

  /** Steps while whole messages are queued; each step consumes input, so this ends. */
  #run(out: ServerAction[]): void {
    while (!this.#settled() && this.#step(out));
  }

  #setVerdict(v: { ok: true } | { ok: false; error: VncgateError }): ServerAction[] {
    if (this.#settled()) return [];
    if (this.#verdict) throw new Error('verdict given twice');
    this.#verdict = v;
    const out: ServerAction[] = [];
    if (this.#state === 'preVerdict') this.#afterPreVerdict(out);
    else if (this.#state === 'verdict') this.#finish(out);
    return out;
  }

  #step(out: ServerAction[]): boolean {
    const q = this.#q;
    switch (this.#state) {
      case 'version': {
        if (!q.has(PROTOCOL_VERSION_LENGTH)) return false;
        const parsed = parseVersion(q.bytes(PROTOCOL_VERSION_LENGTH));
        const v = parsed ? negotiatedVersion(parsed) : null;
        if (!parsed || !v) {
          out.push(...this.#fail('RFB_ERR_CLIENT_PROTOCOL', 'client did not send a usable RFB ProtocolVersion'));
          return false;
        }
        this.#clientVersion = parsed.raw;
        this.#version = v;
        if (v === '3.8') {
          this.#sendTypeList(out);
          return true;
        }
        this.#state = 'preVerdict';
        if (this.#verdict) this.#afterPreVerdict(out);
        return true;
      }
      case 'choice': {
        if (!q.has(1)) return false;
        const t = q.u8();
        const chosen = this.#security.find((s) => SERVER_SECURITY_TYPE[s] === t);
        if (!chosen) {
          out.push({ type: 'send', bytes: this.#resultFailure('Security type not offered') });
          out.push(...this.#fail('RFB_ERR_CLIENT_PROTOCOL', `client chose security type ${t}, which was not offered`));
          return false;
        }
        this.#beginAuth(chosen, out);
        return true;
      }
      case 'vncResponse': {
        if (!q.has(16)) return false;
        const response = q.bytes(16);
        if (!verifyVncAuthResponse(this.#password!, this.#challenge!, response)) {
          out.push({ type: 'send', bytes: this.#resultFailure(publicReason('RFB_ERR_CLIENT_AUTH')) });
          out.push(...this.#fail('RFB_ERR_CLIENT_AUTH', 'client failed VNC authentication'));
          return false;
        }
        this.#state = 'verdict';
        if (this.#verdict) this.#finish(out);
        return true;
      }
      case 'preVerdict':
      case 'verdict':
        // Client bytes sent early (a pipelining client's ClientInit) wait here, bounded.
        return false;
      case 'idle':
      case 'established':
      case 'failed':
        return false;
    }
  }

  #sendTypeList(out: ServerAction[]): void {
    const w = new ByteWriter().u8(this.#security.length);
    for (const s of this.#security) w.u8(SERVER_SECURITY_TYPE[s]);
    out.push({ type: 'send', bytes: w.finish() });
    this.#state = 'choice';
  }

  /** 3.3/3.7 clients: the verdict is known; negotiate, or send the version's failure form. */
  #afterPreVerdict(out: ServerAction[]): void {
    const v = this.#verdict!;
    if (!v.ok) {
      // §7.1.2: 3.3 sends U32 0 then a reason; 3.7 sends a zero-length type list then a reason.
      const reason = Buffer.from(v.error.publicReason, 'utf8');
      const w = this.#version === '3.3' ? new ByteWriter().u32(0) : new ByteWriter().u8(0);
      out.push({ type: 'send', bytes: w.string(reason).finish() });
      out.push(...this.#failWith(v.error));
      return;
    }
    if (this.#version === '3.7') {
      this.#sendTypeList(out);
      // The client's choice may already be queued.
      this.#run(out);
      return;
    }
    // 3.3: the server imposes its most preferred type as a U32.
    const chosen = this.#security[0]!;
    out.push({ type: 'send', bytes: new ByteWriter().u32(SERVER_SECURITY_TYPE[chosen]).finish() });
    this.#beginAuth(chosen, out);
    this.#run(out);
  }

  #beginAuth(chosen: ServerSecurity, out: ServerAction[]): void {
    this.#chosen = chosen;
    if (chosen === 'vncauth') {
      this.#challenge = this.#randomBytes!(16);
      out.push({ type: 'send', bytes: Buffer.from(this.#challenge) });
      this.#state = 'vncResponse';
      return;
    }
    this.#state = 'verdict';
    if (this.#verdict) this.#finish(out);
  }

  /** Authentication on our side is complete and the verdict is known: SecurityResult. */
  #finish(out: ServerAction[]): void {
    const v = this.#verdict!;
    if (!v.ok) {
      out.push({ type: 'send', bytes: this.#resultFailure(v.error.publicReason) });
      out.push(...this.#failWith(v.error));
      return;
    }
    // §7.2.1: no SecurityResult for None before 3.8.
    if (!(this.#chosen === 'none' && this.#version !== '3.8')) {
      out.push({ type: 'send', bytes: new ByteWriter().u32(SECURITY_RESULT.ok).finish() });
    }
    this.#state = 'established';
    out.push({
      type: 'established',
      trailing: this.#q.takeAll(),
      info: { clientVersion: this.#clientVersion, version: this.#version, security: this.#chosen! },
    });
  }

  /** SecurityResult failed; 3.8 adds the reason string (§7.1.3). */
  #resultFailure(reason: string): Buffer {
    const w = new ByteWriter().u32(SECURITY_RESULT.failed);
    if (this.#version === '3.8') w.string(Buffer.from(reason, 'utf8').subarray(0, LIMITS.maxReasonBytes));
    return w.finish();
  }

  #fail(code: ErrorCode, message: string): ServerAction[] {
    return this.#failWith(new VncgateError(code, message));
  }

  #failWith(error: VncgateError): ServerAction[] {
    this.#state = 'failed';
    this.#q.takeAll();
    return [{ type: 'failed', error }];
  }
}

function publicReason(code: ErrorCode): string {
  return new VncgateError(code, '').publicReason;
}
