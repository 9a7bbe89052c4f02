import { VncgateError, type ErrorCode } from '../errors.js';
import { ByteQueue, ByteWriter } from './byte-queue.js';
import {
  LIMITS,
  PROTOCOL_VERSION_LENGTH,
  SECURITY_CHOICES,
  SECURITY_RESULT,
  SECURITY_TYPE,
  SECURITY_TYPE_NAMES,
  VENCRYPT_SUBTYPE_NAMES,
  type RfbVersion,
  type SecurityChoice,
} from './constants.js';
import { negotiatedVersion, parseVersion, versionBytes } from './version.js';
import { vncAuthResponse } from './vnc-auth.js';

export type ClientHandshakeOptions = {
  /** Operator preference, most preferred first; intersected with what the server offers. */
  security: readonly SecurityChoice[];
  /** VNC password (VncAuth, TLSVnc, X509Vnc) or Plain password (Plain, TLSPlain, X509Plain). */
  password?: Uint8Array;
  /** Plain username (Plain, TLSPlain, X509Plain). */
  username?: string;
};

export type ClientHandshakeInfo = {
  /** What the server announced, e.g. "003.889". */
  serverVersion: string;
  /** What we speak with it. */
  version: RfbVersion;
  /** Security types the server listed (3.7+), or the one it imposed (3.3). */
  offeredTypes: number[];
  /** VeNCrypt subtypes the server listed, when VeNCrypt was chosen. */
  offeredSubtypes: number[] | null;
  security: SecurityChoice;
};

export type ClientAction =
  | { type: 'send'; bytes: Buffer }
  /** Wrap the transport in TLS now, then call tlsEstablished(). No plaintext follows. */
  | { type: 'startTls'; transport: 'tls-anon' | 'tls-x509' }
  /** Security is done; the next bytes on the wire are ClientInit (ours) / ServerInit (theirs). */
  | { type: 'established'; info: ClientHandshakeInfo; trailing: Buffer }
  | { type: 'failed'; error: VncgateError };

type State =
  | 'version'
  | 'security33'
  | 'securityTypes'
  | 'reason'
  | 'vncChallenge'
  | 'vencryptVersion'
  | 'vencryptAck'
  | 'vencryptSubtypes'
  | 'vencryptAccept'
  | 'tls'
  | 'securityResult'
  | 'established'
  | 'failed';

function typeNames(types: readonly number[]): string {
  return types.map((t) => SECURITY_TYPE_NAMES[t] ?? `unknown(${t})`).join(', ') || '(none)';
}

function subtypeNames(types: readonly number[]): string {
  return types.map((t) => VENCRYPT_SUBTYPE_NAMES[t] ?? `unknown(${t})`).join(', ') || '(none)';
}

/**
 * The RFB client role, toward the console endpoint: ProtocolVersion, security negotiation
 * (None, VNC Authentication, VeNCrypt 0.2 with its Plain/TLS/X509 subtypes) and SecurityResult.
 * Sans-I/O: feed bytes to receive(), carry out the returned actions. Peer input never throws.
 */
export class RfbClientHandshake {
  readonly #opts: ClientHandshakeOptions;
  readonly #q = new ByteQueue();
  #state: State = 'version';
  #version: RfbVersion = '3.8';
  #serverVersion = '';
  #offeredTypes: number[] = [];
  #offeredSubtypes: number[] | null = null;
  #choice: SecurityChoice | null = null;
  /** What a pending reason string will be reported as, once read. */
  #reasonFor: { code: ErrorCode; message: string } | null = null;

  constructor(opts: ClientHandshakeOptions) {
    if (opts.security.length === 0) throw new TypeError('security preference list is empty');
    for (const s of opts.security) {
      if (!Object.hasOwn(SECURITY_CHOICES, s)) throw new TypeError(`unknown security choice ${String(s)}`);
      const inner = SECURITY_CHOICES[s].inner;
      if (inner !== 'none' && opts.password === undefined) {
        throw new VncgateError('RFB_ERR_CREDENTIALS_MISSING', `security ${s} needs a password and none is configured`);
      }
      if (inner === 'plain' && opts.username === undefined) {
        throw new VncgateError('RFB_ERR_CREDENTIALS_MISSING', `security ${s} needs a username and none is configured`);
      }
    }
    this.#opts = { ...opts, security: [...opts.security] };
  }

  get state(): State {
    return this.#state;
  }

  /** Bytes held while waiting for a complete message (bounded by LIMITS.maxHandshakeBufferBytes). */
  get bufferedBytes(): number {
    return this.#q.length;
  }

  receive(chunk: Uint8Array): ClientAction[] {
    if (this.#settled()) return [];
    if (this.#state === 'tls') {
      // The server spoke before our TLS ClientHello: whatever it is, it is not TLS.
      return this.#fail('RFB_ERR_PROTOCOL', 'server sent plaintext after accepting VeNCrypt TLS');
    }
    this.#q.push(chunk);
    const out: ClientAction[] = [];
    // Each step consumes a whole message or returns false to wait (or to hand off to TLS).
    while (!this.#settled() && this.#step(out));
    if (!this.#settled() && this.#q.length > LIMITS.maxHandshakeBufferBytes) {
      out.push(...this.#fail('RFB_ERR_LIMIT', `server sent more than ${LIMITS.maxHandshakeBufferBytes} bytes during the handshake`));
    }
    return out;
  }

  #settled(): boolean {
    return this.#state === 'established' || this.#state === 'failed';
  }

  /** Call once the TLS session requested by a startTls action is up; feed decrypted bytes after. */
  tlsEstablished(): ClientAction[] {
    if (this.#state !== 'tls' || this.#choice === null) throw new Error(`tlsEstablished() in state ${this.#state}`);
    const out: ClientAction[] = [];
    this.#startInnerAuth(out);
    return out;
  }

  #step(out: ClientAction[]): boolean {
    const q = this.#q;
    switch (this.#state) {
      case 'version': {
        if (!q.has(PROTOCOL_VERSION_LENGTH)) return false;
        const raw = q.bytes(PROTOCOL_VERSION_LENGTH);
        const parsed = parseVersion(raw);
        if (!parsed) {
          out.push(...this.#fail('RFB_ERR_NOT_RFB', 'the endpoint did not send an RFB ProtocolVersion', { received: printable(raw) }));
          return false;
        }
        this.#serverVersion = parsed.raw;
        const v = negotiatedVersion(parsed);
        if (!v) {
          out.push(...this.#fail('RFB_ERR_UNSUPPORTED_VERSION', `unsupported RFB version ${parsed.raw}`, { serverVersion: parsed.raw }));
          return false;
        }
        this.#version = v;
        out.push({ type: 'send', bytes: versionBytes(v) });
        this.#state = v === '3.3' ? 'security33' : 'securityTypes';
        return true;
      }
      case 'security33': {
        // §7.1.2, 3.3: the server imposes the type as a U32; 0 means failure plus a reason.
        if (!q.has(4)) return false;
        const t = q.u32();
        if (t === SECURITY_TYPE.invalid) return this.#expectReason('RFB_ERR_SERVER_REFUSED', 'the server refused the connection');
        this.#offeredTypes = [t];
        const choice = this.#opts.security.find((s) => SECURITY_CHOICES[s].type === t && SECURITY_CHOICES[s].subtype === null);
        if (!choice) {
          out.push(...this.#noCommon(`the RFB 3.3 server requires ${typeNames([t])}`));
          return false;
        }
        this.#choice = choice;
        this.#startInnerAuth(out);
        return true;
      }
      case 'securityTypes': {
        if (!q.has(1)) return false;
        const n = q.peekU8();
        if (n === 0) {
          q.skip(1);
          return this.#expectReason('RFB_ERR_SERVER_REFUSED', 'the server refused the connection');
        }
        if (!q.has(1 + n)) return false;
        q.skip(1);
        const types = [...q.bytes(n)];
        this.#offeredTypes = types;
        const choice = this.#opts.security.find((s) => types.includes(SECURITY_CHOICES[s].type));
        if (!choice) {
          out.push(...this.#noCommon(`the server offers ${typeNames(types)}`));
          return false;
        }
        const type = SECURITY_CHOICES[choice].type;
        out.push({ type: 'send', bytes: new ByteWriter().u8(type).finish() });
        if (type === SECURITY_TYPE.vencrypt) {
          this.#state = 'vencryptVersion';
        } else {
          this.#choice = choice;
          this.#startInnerAuth(out);
        }
        return true;
      }
      case 'reason': {
        if (!q.has(4)) return false;
        const len = q.peekU32();
        const why = this.#reasonFor ?? { code: 'RFB_ERR_PROTOCOL' as const, message: 'failure' };
        if (len > LIMITS.maxReasonBytes) {
          // Do not wait for (or buffer) an oversized string; the failure itself is what matters.
          out.push(...this.#fail(why.code, `${why.message} (reason of ${len} bytes not read)`, { reasonLength: len }));
          return false;
        }
        if (!q.has(4 + len)) return false;
        q.skip(4);
        const reason = sanitizeReason(q.bytes(len));
        out.push(...this.#fail(why.code, reason ? `${why.message}: ${reason}` : why.message, { serverReason: reason }));
        return false;
      }
      case 'vncChallenge': {
        if (!q.has(16)) return false;
        const challenge = q.bytes(16);
        out.push({ type: 'send', bytes: vncAuthResponse(this.#opts.password ?? new Uint8Array(), challenge) });
        this.#state = 'securityResult';
        return true;
      }
      case 'vencryptVersion': {
        // rfbproto VeNCrypt: server sends its highest version as two U8s; we speak 0.2 only.
        if (!q.has(2)) return false;
        const major = q.u8();
        const minor = q.u8();
        if (major !== 0 || minor < 2) {
          out.push(...this.#fail('RFB_ERR_VENCRYPT_VERSION', `unsupported VeNCrypt version ${major}.${minor}`, { vencryptVersion: `${major}.${minor}` }));
          return false;
        }
        out.push({ type: 'send', bytes: new ByteWriter().u8(0).u8(2).finish() });
        this.#state = 'vencryptAck';
        return true;
      }
      case 'vencryptAck': {
        if (!q.has(1)) return false;
        if (q.u8() !== 0) {
          out.push(...this.#fail('RFB_ERR_VENCRYPT_VERSION', 'the server rejected VeNCrypt version 0.2'));
          return false;
        }
        this.#state = 'vencryptSubtypes';
        return true;
      }
      case 'vencryptSubtypes': {
        if (!q.has(1)) return false;
        const n = q.peekU8();
        if (n === 0) {
          q.skip(1);
          out.push(...this.#noCommon('the server offers no VeNCrypt subtypes'));
          return false;
        }
        if (!q.has(1 + 4 * n)) return false;
        q.skip(1);
        const subtypes: number[] = [];
        for (let i = 0; i < n; i++) subtypes.push(q.u32());
        this.#offeredSubtypes = subtypes;
        const choice = this.#opts.security.find((s) => {
          const sub = SECURITY_CHOICES[s].subtype;
          return sub !== null && subtypes.includes(sub);
        });
        if (!choice) {
          out.push(...this.#noCommon(`the server offers VeNCrypt ${subtypeNames(subtypes)}`));
          return false;
        }
        this.#choice = choice;
        const c = SECURITY_CHOICES[choice];
        out.push({ type: 'send', bytes: new ByteWriter().u32(c.subtype ?? 0).finish() });
        if (c.transport === 'plain') {
          this.#startInnerAuth(out);
        } else {
          // TLS subtypes get one more U8 (1 = accepted) before TLS starts; QEMU, TigerVNC and
          // gtk-vnc all send it although the VeNCrypt write-up omits it.
          this.#state = 'vencryptAccept';
        }
        return true;
      }
      case 'vencryptAccept': {
        if (!q.has(1)) return false;
        if (q.u8() !== 1) {
          out.push(...this.#fail('RFB_ERR_VENCRYPT_REJECTED', 'the server rejected the VeNCrypt subtype'));
          return false;
        }
        if (q.length > 0) {
          out.push(...this.#fail('RFB_ERR_PROTOCOL', 'server sent plaintext after accepting VeNCrypt TLS'));
          return false;
        }
        const transport = SECURITY_CHOICES[this.#choice!].transport;
        this.#state = 'tls';
        out.push({ type: 'startTls', transport: transport === 'tls-anon' ? 'tls-anon' : 'tls-x509' });
        return false;
      }
      case 'securityResult': {
        if (!q.has(4)) return false;
        const status = q.u32();
        if (status === SECURITY_RESULT.ok) {
          this.#establish(out);
          return false;
        }
        const message = 'the server refused authentication';
        if (this.#version === '3.8') return this.#expectReason('RFB_ERR_AUTH_FAILED', message);
        out.push(...this.#fail('RFB_ERR_AUTH_FAILED', message, { status }));
        return false;
      }
      case 'tls':
      case 'established':
      case 'failed':
        return false;
    }
  }

  /** Begins the chosen scheme's own exchange, after any TLS wrap. */
  #startInnerAuth(out: ClientAction[]): void {
    const c = SECURITY_CHOICES[this.#choice!];
    switch (c.inner) {
      case 'none':
        // §7.2.1: a None-authenticated session gets a SecurityResult only from 3.8 on. VeNCrypt
        // subtypes always get one (the top-level type was VeNCrypt, not None).
        if (c.type === SECURITY_TYPE.none && this.#version !== '3.8') this.#establish(out);
        else this.#state = 'securityResult';
        return;
      case 'vnc':
        this.#state = 'vncChallenge';
        return;
      case 'plain': {
        const user = Buffer.from(this.#opts.username ?? '', 'utf8');
        const pass = Buffer.from(this.#opts.password ?? new Uint8Array());
        if (user.length > LIMITS.maxPlainCredentialBytes || pass.length > LIMITS.maxPlainCredentialBytes) {
          out.push(...this.#fail('RFB_ERR_CREDENTIALS_MISSING', 'configured Plain credentials are too long'));
          return;
        }
        out.push({ type: 'send', bytes: new ByteWriter().u32(user.length).u32(pass.length).bytes(user).bytes(pass).finish() });
        this.#state = 'securityResult';
        return;
      }
    }
  }

  #establish(out: ClientAction[]): void {
    this.#state = 'established';
    out.push({
      type: 'established',
      trailing: this.#q.takeAll(),
      info: {
        serverVersion: this.#serverVersion,
        version: this.#version,
        offeredTypes: this.#offeredTypes,
        offeredSubtypes: this.#offeredSubtypes,
        security: this.#choice!,
      },
    });
  }

  #expectReason(code: ErrorCode, message: string): boolean {
    this.#reasonFor = { code, message };
    this.#state = 'reason';
    return true;
  }

  #noCommon(message: string): ClientAction[] {
    return this.#fail('RFB_ERR_NO_COMMON_SECURITY', `no common security type: ${message}; configured: ${this.#opts.security.join(', ')}`, {
      offeredTypes: this.#offeredTypes.map((t) => SECURITY_TYPE_NAMES[t] ?? `unknown(${t})`),
      ...(this.#offeredSubtypes ? { offeredSubtypes: this.#offeredSubtypes.map((t) => VENCRYPT_SUBTYPE_NAMES[t] ?? `unknown(${t})`) } : {}),
      configured: [...this.#opts.security],
    });
  }

  #fail(code: ErrorCode, message: string, details?: Record<string, unknown>): ClientAction[] {
    this.#state = 'failed';
    this.#q.takeAll();
    return [{ type: 'failed', error: new VncgateError(code, message, details ? { details } : undefined) }];
  }
}

/** Peer text for logs and operator output: printable ASCII/UTF-8 only, bounded already. */
export function sanitizeReason(bytes: Buffer): string {
  return bytes
    .toString('utf8')
    .replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, ' ')
    .trim();
}

function printable(bytes: Buffer): string {
  return bytes.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
}
