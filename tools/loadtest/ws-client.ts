import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { WS_OPCODE, frameHeaderLength, writeFrameHeader } from '../../src/ws-frame.js';
import { LoadError } from './load-error.js';
import { socketErrorCode, type Conn, type ConnEnd, type ConnHandlers, type Connect } from './transport.js';

/**
 * A small RFC 6455 client, playing a browser's part toward a noVNC proxy: subprotocol "binary",
 * an `Origin` header, masked client frames, no extensions (as noVNC runs with permessage-deflate
 * refused by vncgate anyway), automatic pong and the closing handshake.
 *
 * Why not the `ws` package: it assembles every message into one buffer before handing it over,
 * which copies each byte once more than a browser's WebSocket does; the load tester must not be
 * the bottleneck it measures. Here binary payload is streamed straight to the RFB reader as the
 * socket delivers it (a subarray, no copy), frame boundaries and all.
 */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 §1.3

export { WS_OPCODE } from '../../src/ws-frame.js';

const LIMITS = {
  responseHeaderBytes: 16 * 1024,
  errorBodyBytes: 4 * 1024,
  /** Frames larger than this are a broken peer, not a console (vncgate sends ≤ 64 KiB). */
  frameBytes: 1024 * 1024 * 1024,
  /** After our close frame, the server gets this long to finish the closing handshake. */
  closeGraceMs: 2_000,
} as const;

export type WsConnectOptions = {
  /** ws://… or wss://…, path and query included (the token travels in the query, as noVNC sends it). */
  url: string;
  /** `Origin` header; default the URL's own origin (the console page is served by the proxy). null: none. */
  origin?: string | null;
  /** Offered subprotocols; default ["binary"], as noVNC offers. */
  protocols?: readonly string[];
  /** Deadline for TCP connect, TLS and the HTTP upgrade together. */
  timeoutMs: number;
  /** wss: PEM CA to trust (a development certificate); default the system CAs. Ignored with `secureContext`. */
  ca?: Buffer | string;
  /**
   * wss: the TLS context, made once (tlsContext()) and shared by every connection, as a browser
   * does; building one per connection costs about a millisecond of CPU on the client side alone.
   */
  secureContext?: SecureContext;
  /** wss: default true. */
  rejectUnauthorized?: boolean;
  /**
   * wss: the one certificate the server must present (DER), checked before the upgrade request
   * (and its token) is sent; chain and name checks are then skipped, so give only a certificate
   * you trust as such (a self-signed development certificate, see pinnableCertificate()).
   * The handshake itself still proves the server holds its key (TLS CertificateVerify).
   */
  pinnedCert?: Buffer;
  /** wss: a TLS session from an earlier connection to resume (as a browser does). */
  tlsSession?: Buffer;
  /** wss: receives each session the server offers for resumption. */
  onTlsSession?: (session: Buffer) => void;
};

/** A client TLS context trusting `ca` (or the system CAs), to share across connections. */
export function tlsContext(ca?: Buffer | string): SecureContext {
  return createSecureContext(ca !== undefined ? { ca } : {});
}

/**
 * The DER of `pem` when it is exactly one self-signed certificate (vncgate's development
 * certificate, say), which the load tester then pins instead of verifying a chain: Node's chain
 * path builds the whole peer certificate as JavaScript objects for its name check, about 0.35 ms
 * of client CPU per handshake here, which a browser does not spend. Anything else: null.
 */
export function pinnableCertificate(pem: Buffer | string): Buffer | null {
  const text = pem.toString();
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length !== 1) return null;
  try {
    const cert = new X509Certificate(blocks[0]!);
    return cert.checkIssued(cert) && cert.verify(cert.publicKey) ? cert.raw : null;
  } catch {
    return null;
  }
}

/**
 * How the load tester trusts a wss server, decided once and shared by every connection: a lone
 * self-signed `ca` is pinned, with a context that does not also trust it as a CA (that would bring
 * back Node's chain-and-name check and its cost); any other `ca`, or none, is verified as a chain.
 */
export function clientTrust(ca?: Buffer | string): { secureContext: SecureContext; pinnedCert?: Buffer } {
  const pinnedCert = ca !== undefined ? pinnableCertificate(ca) : null;
  return pinnedCert !== null ? { secureContext: tlsContext(), pinnedCert } : { secureContext: tlsContext(ca) };
}

export function wsConnector(opts: Omit<WsConnectOptions, 'url'> & { url: string | (() => string) }): Connect {
  return (handlers) => connectWebSocket({ ...opts, url: typeof opts.url === 'function' ? opts.url() : opts.url }, handlers);
}

let maskPool = Buffer.alloc(0);
let maskAt = 0;
/** Four fresh random masking-key bytes (§5.3), drawn from a pool to keep the hot path cheap. */
function maskKeyInto(out: Buffer, at: number): void {
  if (maskAt + 4 > maskPool.length) {
    maskPool = randomBytes(4096);
    maskAt = 0;
  }
  maskPool.copy(out, at, maskAt, maskAt + 4);
  maskAt += 4;
}

/** One masked client frame with FIN set (§5.2). */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const out = Buffer.allocUnsafe(frameHeaderLength(len) + 4 + len);
  const m = writeFrameHeader(out, 0, opcode, true, len);
  maskKeyInto(out, m);
  const k0 = out[m]!;
  const k1 = out[m + 1]!;
  const k2 = out[m + 2]!;
  const k3 = out[m + 3]!;
  const p = m + 4;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    out[p + i] = payload[i]! ^ k0;
    out[p + i + 1] = payload[i + 1]! ^ k1;
    out[p + i + 2] = payload[i + 2]! ^ k2;
    out[p + i + 3] = payload[i + 3]! ^ k3;
  }
  for (; i < len; i++) out[p + i] = payload[i]! ^ out[m + (i & 3)]!;
  return out;
}

export type FrameSink = {
  /** Binary payload bytes, in order, across frame and message boundaries. */
  data(bytes: Buffer): void;
  control(opcode: number, payload: Buffer): void;
  fail(error: LoadError): void;
};

type FrameState = 'head' | 'ext' | 'payload' | 'control' | 'failed';

/**
 * Server-to-client frame reader (§5.2): streams binary payload to the sink, collects control
 * frames (≤ 125 bytes, §5.5), and fails on what a server must not send (masked frames, RSV bits
 * without an extension, fragmented control frames) and on text frames, which vncgate never sends.
 */
export class WsFrameReader {
  readonly #sink: FrameSink;
  readonly #head = Buffer.alloc(14);
  #have = 0;
  #need = 2;
  #state: FrameState = 'head';
  #opcode = 0;
  #left = 0;
  #inMessage = false;
  #control: Buffer[] = [];

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  receive(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case 'payload': {
          const k = Math.min(this.#left, n - i);
          this.#sink.data(i === 0 && k === n ? chunk : chunk.subarray(i, i + k));
          i += k;
          this.#left -= k;
          if (this.#left === 0) this.#nextFrame();
          break;
        }
        case 'control': {
          const k = Math.min(this.#left, n - i);
          this.#control.push(chunk.subarray(i, i + k));
          i += k;
          this.#left -= k;
          if (this.#left === 0) {
            const payload = Buffer.concat(this.#control);
            this.#control = [];
            const op = this.#opcode;
            this.#nextFrame();
            this.#sink.control(op, payload);
          }
          break;
        }
        case 'head':
        case 'ext': {
          const k = Math.min(this.#need - this.#have, n - i);
          chunk.copy(this.#head, this.#have, i, i + k);
          this.#have += k;
          i += k;
          if (this.#have === this.#need) this.#parseHead();
          break;
        }
        case 'failed':
          return;
      }
    }
  }

  #nextFrame(): void {
    this.#state = 'head';
    this.#have = 0;
    this.#need = 2;
  }

  #fail(detail: string): void {
    this.#state = 'failed';
    this.#sink.fail(new LoadError('ws-protocol', detail));
  }

  #parseHead(): void {
    const h = this.#head;
    const b0 = h[0]!;
    const b1 = h[1]!;
    const len7 = b1 & 0x7f;
    if (this.#state === 'head') {
      if ((b0 & 0x70) !== 0) return this.#fail('RSV bits set without a negotiated extension');
      if ((b1 & 0x80) !== 0) return this.#fail('server frame is masked (§5.1)');
      if (len7 >= 126) {
        this.#state = 'ext';
        this.#need = len7 === 126 ? 4 : 10;
        return;
      }
    }
    let len: number;
    if (len7 === 126) len = h.readUInt16BE(2);
    else if (len7 === 127) {
      const hi = h.readUInt32BE(2);
      if (hi > 0) return this.#fail(`frame of ${hi} × 2^32 bytes`);
      len = h.readUInt32BE(6);
    } else len = len7;
    if (len > LIMITS.frameBytes) return this.#fail(`frame of ${len} bytes`);
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    this.#opcode = opcode;
    this.#left = len;
    if (opcode >= 0x8) {
      if (!fin || len > 125) return this.#fail('fragmented or oversized control frame (§5.5)');
      if (opcode !== WS_OPCODE.close && opcode !== WS_OPCODE.ping && opcode !== WS_OPCODE.pong) return this.#fail(`unknown control opcode ${opcode}`);
      this.#state = 'control';
    } else {
      if (opcode === WS_OPCODE.text) return this.#fail('text frame (noVNC sessions are binary)');
      if (opcode === WS_OPCODE.binary) {
        if (this.#inMessage) return this.#fail('new message inside a fragmented one');
      } else if (opcode === WS_OPCODE.continuation) {
        if (!this.#inMessage) return this.#fail('continuation frame outside a message');
      } else return this.#fail(`unknown opcode ${opcode}`);
      this.#inMessage = !fin;
      this.#state = 'payload';
    }
    if (len === 0) {
      if (this.#state === 'control') {
        this.#nextFrame();
        this.#sink.control(opcode, Buffer.alloc(0));
      } else this.#nextFrame();
    }
  }
}

function expectedAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

type Head = { status: number; headers: Map<string, string>; rest: Buffer };

function parseHead(buf: Buffer, end: number): Head | LoadError {
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!m) return new LoadError('ws-handshake', `not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) {
      const k = line.slice(0, c).trim().toLowerCase();
      const v = line.slice(c + 1).trim();
      headers.set(k, headers.has(k) ? `${headers.get(k)}, ${v}` : v);
    }
  }
  return { status: Number(m[1]), headers, rest: buf.subarray(end + 4) };
}

/** `http-403 HTTP_ERR_ORIGIN`: the status, and vncgate's error code when the body names one. */
function httpError(status: number, body: Buffer): LoadError {
  let code = '';
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: unknown } };
    if (typeof parsed.error?.code === 'string' && /^[A-Z_]{1,64}$/.test(parsed.error.code)) code = ` ${parsed.error.code}`;
  } catch {
    // not JSON: the status alone
  }
  return new LoadError(`http-${status}${code}`, `upgrade refused with HTTP ${status}: ${body.toString('utf8').slice(0, 200)}`);
}

/**
 * Opens a WebSocket and resolves once the upgrade succeeded (rejects with a LoadError otherwise).
 * From then on, binary payload goes to `handlers.data` and the end to `handlers.end`.
 */
export function connectWebSocket(opts: WsConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const url = new URL(opts.url);
  const secure = url.protocol === 'wss:';
  if (!secure && url.protocol !== 'ws:') return Promise.reject(new LoadError('usage', `not a ws:// or wss:// URL: ${url.protocol}`));
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (secure ? 443 : 80));
  const protocols = opts.protocols ?? ['binary'];
  const origin = opts.origin === undefined ? `${secure ? 'https' : 'http'}://${url.host}` : opts.origin;
  const key = randomBytes(16).toString('base64');
  const request = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
    ...(protocols.length > 0 ? [`Sec-WebSocket-Protocol: ${protocols.join(', ')}`] : []),
    ...(origin !== null ? [`Origin: ${origin}`] : []),
    'User-Agent: vncgate-loadtest',
    '',
    '',
  ].join('\r\n');

  return new Promise<Conn>((resolve, reject) => {
    const socket: Socket = secure
      ? tlsConnect({
          host,
          port,
          ...(isIP(host) === 0 ? { servername: host } : {}),
          ...(opts.secureContext !== undefined ? { secureContext: opts.secureContext } : opts.ca !== undefined ? { ca: opts.ca } : {}),
          // A pinned certificate is checked below, on secureConnect, before anything is sent.
          rejectUnauthorized: opts.pinnedCert !== undefined ? false : (opts.rejectUnauthorized ?? true),
          ALPNProtocols: ['http/1.1'],
          ...(opts.tlsSession !== undefined ? { session: opts.tlsSession } : {}),
        })
      : netConnect({ host, port });
    socket.setNoDelay(true);
    let phase: 'connecting' | 'tls' | 'upgrading' | 'error-body' | 'open' | 'done' = 'connecting';
    let head: Buffer = Buffer.alloc(0);
    let errorHead: Head | null = null;
    let ended = false;
    let closeSent = false;
    let graceTimer: NodeJS.Timeout | null = null;

    const settle = (err: LoadError): void => {
      if (phase === 'open' || phase === 'done') return;
      phase = 'done';
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const end = (how: ConnEnd): void => {
      if (ended) return;
      ended = true;
      if (graceTimer) clearTimeout(graceTimer);
      handlers.end(how);
    };
    const timer = setTimeout(
      () => settle(new LoadError(`timeout-${phase === 'connecting' ? 'connect' : phase === 'tls' ? 'tls' : 'upgrade'}`, `no WebSocket to ${url.host} within ${opts.timeoutMs} ms (${phase})`)),
      opts.timeoutMs,
    );

    const sendFrame = (opcode: number, payload: Uint8Array): void => {
      if (!socket.destroyed && socket.writable) socket.write(encodeClientFrame(opcode, payload));
    };
    const reader = new WsFrameReader({
      data: (b) => handlers.data(b),
      control: (opcode, payload) => {
        if (opcode === WS_OPCODE.ping) sendFrame(WS_OPCODE.pong, payload);
        else if (opcode === WS_OPCODE.close) {
          const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
          const reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
          if (!closeSent) {
            closeSent = true;
            sendFrame(WS_OPCODE.close, payload.subarray(0, 2));
          }
          // §7.1.1: the server closes TCP first; we only stop writing.
          socket.end();
          end({ kind: 'closed', code, reason });
        }
      },
      fail: (error) => {
        end({ kind: 'error', error });
        socket.destroy();
      },
    });

    const conn: Conn = {
      write: (bytes) => {
        if (!closeSent) sendFrame(WS_OPCODE.binary, bytes);
      },
      close: () => {
        if (closeSent || ended) return;
        closeSent = true;
        const p = Buffer.alloc(2);
        p.writeUInt16BE(1000);
        sendFrame(WS_OPCODE.close, p);
        graceTimer = setTimeout(() => socket.destroy(), LIMITS.closeGraceMs);
        graceTimer.unref();
      },
      destroy: () => socket.destroy(),
    };

    const onUpgradeData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (phase === 'error-body') return checkErrorBody();
      const endAt = head.indexOf('\r\n\r\n');
      if (endAt === -1) {
        if (head.length > LIMITS.responseHeaderBytes) settle(new LoadError('ws-handshake', 'response header too large'));
        return;
      }
      const parsed = parseHead(head, endAt);
      if (parsed instanceof LoadError) return settle(parsed);
      if (parsed.status !== 101) {
        errorHead = parsed;
        head = parsed.rest;
        phase = 'error-body';
        return checkErrorBody();
      }
      const h = parsed.headers;
      const problem =
        h.get('upgrade')?.toLowerCase() !== 'websocket'
          ? 'Upgrade header is not websocket'
          : !/\bupgrade\b/i.test(h.get('connection') ?? '')
            ? 'Connection header lacks upgrade'
            : h.get('sec-websocket-accept') !== expectedAccept(key)
              ? 'wrong Sec-WebSocket-Accept'
              : h.has('sec-websocket-extensions')
                ? `unrequested extension ${h.get('sec-websocket-extensions')}`
                : h.has('sec-websocket-protocol') && !protocols.includes(h.get('sec-websocket-protocol')!)
                  ? `unoffered subprotocol ${h.get('sec-websocket-protocol')}`
                  : null;
      if (problem !== null) return settle(new LoadError('ws-handshake', problem));
      phase = 'open';
      clearTimeout(timer);
      socket.off('data', onUpgradeData);
      socket.on('data', (c: Buffer) => reader.receive(c));
      resolve(conn);
      if (parsed.rest.length > 0) reader.receive(parsed.rest);
    };
    const checkErrorBody = (): void => {
      const e = errorHead!;
      const want = Math.min(Number(e.headers.get('content-length') ?? 0) || 0, LIMITS.errorBodyBytes);
      if (head.length >= want) settle(httpError(e.status, head.subarray(0, want)));
    };

    socket.once('connect', () => {
      phase = secure ? 'tls' : 'upgrading';
      if (!secure) socket.write(request);
    });
    if (secure) {
      // Sessions offered for resumption are passed on only from a connection whose certificate
      // passed the pin check (TLS 1.2 may offer one before the handshake completes: it waits).
      let trusted = false;
      let offered: Buffer | null = null;
      const onTlsSession = opts.onTlsSession;
      if (onTlsSession) {
        socket.on('session', (s: Buffer) => {
          if (trusted) onTlsSession(s);
          else offered = s;
        });
      }
      socket.once('secureConnect', () => {
        const tls = socket as TLSSocket;
        const pinned = opts.pinnedCert;
        // A resumed session presents no certificate: the server proved it holds the secret of a
        // session that came from a connection which passed this check.
        if (pinned !== undefined && !tls.isSessionReused() && tls.getPeerX509Certificate()?.raw.equals(pinned) !== true) {
          settle(new LoadError('tls-pin', `${url.host} presented a certificate other than the pinned one`));
          return;
        }
        trusted = true;
        if (offered !== null && onTlsSession) onTlsSession(offered);
        offered = null;
        phase = 'upgrading';
        socket.write(request);
      });
    }
    socket.on('data', onUpgradeData);
    socket.on('error', (err) => {
      const code = socketErrorCode(err);
      if (phase === 'open') end({ kind: 'error', error: new LoadError(`socket-${code}`, err.message) });
      else settle(new LoadError(phase === 'connecting' ? `connect-${code}` : phase === 'tls' ? `tls-${code}` : `socket-${code}`, err.message));
    });
    socket.on('close', () => {
      if (phase === 'error-body' && errorHead) return settle(httpError(errorHead.status, head));
      if (phase !== 'open') return settle(new LoadError('ws-handshake', `connection closed during the upgrade (${phase})`));
      // §7.1.5: no close frame seen means 1006.
      end({ kind: 'closed', code: 1006, reason: '' });
    });
  });
}
