import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { ERROR_CODES } from '../../src/errors.js';
import { LoadError, type Conn, type Connect } from '../loadtest/index.js';
import { JWT_AUDIENCE, JWT_ISSUER } from './replica.js';

/**
 * The soak's browser side. Every connection comes from a loopback address of its own
 * (127.100.x.y for consoles, 127.200.x.y for the token API), so a replica's "session started"
 * line (the PROXY header carries the address) says which replica served it, and no per-client
 * limit counts the soak as one client.
 */
export class AddressPool {
  #next = 0;
  constructor(readonly secondOctet: number) {}
  take(): string {
    const i = this.#next++;
    const hi = Math.floor(i / 254) % 256;
    return `127.${this.secondOctet}.${hi}.${(i % 254) + 1}`;
  }
}

/** What one connection saw: the certificate it was shown, the close code it got (1006: none). */
export type ConnInfo = { cert: string | null; closeCode: number | null; onClose?: () => void };

export function newConnInfo(): ConnInfo {
  return { cert: null, closeCode: null };
}

/** Once the connection has closed (vncgate's close frame follows its refusal), or after `ms`. */
export function closedOrAfter(info: ConnInfo, ms: number): Promise<void> {
  if (info.closeCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    info.onClose = () => {
      clearTimeout(t);
      resolve();
    };
  });
}

/** "TOKEN_ERR_INVALID" from the reason vncgate sent, when it is one of the table's. */
const CODE_BY_REASON = new Map<string, string>();
for (const [code, v] of Object.entries(ERROR_CODES)) if (!CODE_BY_REASON.has(v.reason)) CODE_BY_REASON.set(v.reason, code);

/** A stable key for a failed attempt: the error code vncgate sent, else the load tester's reason. */
export function failureKey(err: unknown, info: ConnInfo | null): string {
  const reason = err instanceof LoadError ? err.reason : err instanceof Error ? err.message : String(err);
  const refused = /^rfb-refused: (.*)$/.exec(reason);
  let key = reason;
  if (refused) key = CODE_BY_REASON.get(refused[1]!) ?? `rfb-refused`;
  const close = info?.closeCode ?? null;
  return close !== null && !/closed-by-peer/.test(key) ? `${key} (close ${close})` : key;
}

/** A LoadSession transport over the `ws` package: wss through HAProxy from `localAddress`, trusting `ca`. */
export function soakConnector(opts: { url: string; ca: string; localAddress: string; timeoutMs: number; info: ConnInfo }): Connect {
  return (handlers) =>
    new Promise<Conn>((resolve, reject) => {
      const origin = new URL(opts.url.replace(/^ws/, 'http')).origin;
      const ws = new WebSocket(opts.url, ['binary'], {
        ca: opts.ca,
        localAddress: opts.localAddress,
        origin,
        handshakeTimeout: opts.timeoutMs,
        perMessageDeflate: false,
      });
      let open = false;
      let ended = false;
      ws.on('upgrade', (res) => {
        opts.info.cert = (res.socket as TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? null;
      });
      ws.on('unexpected-response', (_req, res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.length < 16 && parts.push(d));
        res.on('end', () => {
          let code = '';
          try {
            code = String((JSON.parse(Buffer.concat(parts).toString('utf8')) as { error?: { code?: string } }).error?.code ?? '');
          } catch {
            // the status alone
          }
          ws.terminate();
          reject(new LoadError(code !== '' ? code : `http-${res.statusCode ?? 0}`, `upgrade answered ${res.statusCode ?? 0}`));
        });
      });
      ws.on('open', () => {
        open = true;
        // destroy() closes with a grace second: after a refusal, the close frame vncgate sends
        // with it (its close code) is still read; then the socket is cut.
        const destroy = (): void => {
          ws.close(1000);
          setTimeout(() => ws.terminate(), 1_000).unref();
        };
        resolve({ write: (b) => ws.send(b), close: () => ws.close(1000), destroy });
      });
      ws.on('message', (data: Buffer) => handlers.data(data));
      ws.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? err.message.slice(0, 60);
        if (!open) reject(new LoadError(`connect-${code}`, err.message));
        else if (!ended) {
          ended = true;
          handlers.end({ kind: 'error', error: new LoadError(`socket-${code}`, err.message) });
        }
      });
      ws.on('close', (code, reason) => {
        opts.info.closeCode = code;
        opts.info.onClose?.();
        if (!open) return reject(new LoadError(`closed-before-open-${code}`, reason.toString()));
        if (ended) return;
        ended = true;
        handlers.end({ kind: 'closed', code, reason: reason.toString() });
      });
    });
}

/** POST /v1/console-tokens through HAProxy, one token at a time (fresh when used, as a portal mints one per click). */
export class TokenMinter {
  #jwt: string | null = null;
  readonly #addresses = new AddressPool(200);

  constructor(private readonly opts: { baseUrl: string; ca: string; secret: Uint8Array; target: { host: string; port: number }; timeoutMs: number }) {}

  async mint(): Promise<string> {
    this.#jwt ??= await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(JWT_ISSUER).setAudience(JWT_AUDIENCE).setSubject('vncgate-soak').setIssuedAt().setExpirationTime('1h').sign(this.opts.secret);
    const body = JSON.stringify({ target: this.opts.target, ttlSeconds: 300, count: 1 });
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpsRequest(
        new URL('/v1/console-tokens', this.opts.baseUrl),
        {
          method: 'POST',
          agent: false,
          ca: this.opts.ca,
          localAddress: this.#addresses.take(),
          timeout: this.opts.timeoutMs,
          headers: { authorization: `Bearer ${this.#jwt}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
          res.on('error', (err) => reject(new LoadError('mint-transport', err.message)));
        },
      );
      req.on('timeout', () => req.destroy(new LoadError('mint-timeout', `no answer within ${this.opts.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof LoadError ? err : new LoadError(`mint-${(err as NodeJS.ErrnoException).code ?? 'transport'}`, err.message)));
      req.end(body);
    });
    if (status !== 201) {
      let code = `http-${status}`;
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? code;
      } catch {
        // the status alone
      }
      throw new LoadError(`mint-${code} (http ${status})`, `token API answered ${status}`);
    }
    const [first] = JSON.parse(text) as { token: string }[];
    if (first === undefined) throw new LoadError('mint-empty', 'token API answered no token');
    return first.token;
  }
}
