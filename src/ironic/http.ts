import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { VncgateError, type ErrorCode } from '../errors.js';
import type { UpstreamObserver, UpstreamService } from '../observe/upstream.js';

export type HttpResponse = { status: number; headers: IncomingHttpHeaders; body: string };

export type HttpOptions = {
  method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
  /** PEM bundle trusted for https (the system store when absent). */
  ca?: Buffer | string;
  /** Largest response body read; a bigger one is an error, not a wait. */
  maxBodyBytes?: number;
  signal?: AbortSignal;
  /** Error code family for failures ("IRONIC" → IRONIC_ERR_UNREACHABLE …). */
  family: HttpFamily;
  /** Told each request's duration; ok = an answer below 500. */
  observe?: UpstreamObserver | undefined;
};

const DEFAULT_MAX_BODY = 1024 * 1024;

export type HttpFamily = 'IRONIC' | 'NOVA' | 'KEYSTONE';

/** Transport failures talking to Keystone are authentication failures from our point of view. */
const CODES: Record<HttpFamily, Record<'UNREACHABLE' | 'TIMEOUT' | 'BAD_RESPONSE', ErrorCode>> = {
  IRONIC: { UNREACHABLE: 'IRONIC_ERR_UNREACHABLE', TIMEOUT: 'IRONIC_ERR_TIMEOUT', BAD_RESPONSE: 'IRONIC_ERR_BAD_RESPONSE' },
  NOVA: { UNREACHABLE: 'NOVA_ERR_UNREACHABLE', TIMEOUT: 'NOVA_ERR_TIMEOUT', BAD_RESPONSE: 'NOVA_ERR_BAD_RESPONSE' },
  KEYSTONE: { UNREACHABLE: 'IRONIC_ERR_AUTH', TIMEOUT: 'IRONIC_ERR_AUTH', BAD_RESPONSE: 'IRONIC_ERR_AUTH' },
};

const SERVICE: Record<HttpFamily, UpstreamService> = { IRONIC: 'ironic', NOVA: 'nova', KEYSTONE: 'keystone' };

function code(family: HttpFamily, what: 'UNREACHABLE' | 'TIMEOUT' | 'BAD_RESPONSE'): ErrorCode {
  return CODES[family][what];
}

/**
 * One HTTP(S) request with a whole-request deadline and a bounded body, for the OpenStack APIs.
 * Node's fetch cannot take a per-request CA bundle without an extra dependency; node:https can.
 */
export function httpJson(opts: HttpOptions): Promise<HttpResponse> {
  const u = new URL(opts.url);
  const isHttps = u.protocol === 'https:';
  if (!isHttps && u.protocol !== 'http:') return Promise.reject(new VncgateError('CONFIG_ERR_INVALID', `unsupported URL scheme in ${u.origin}`));
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const t0 = performance.now();
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: VncgateError | null, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      opts.observe?.(SERVICE[opts.family], (performance.now() - t0) / 1000, err === null && res !== undefined && res.status < 500);
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(res!);
    };
    const req = (isHttps ? httpsRequest : httpRequest)(
      u,
      {
        method: opts.method,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...opts.headers,
        },
        ...(isHttps && opts.ca !== undefined ? { ca: opts.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBody) {
            finish(new VncgateError(code(opts.family, 'BAD_RESPONSE'), `${u.origin} sent more than ${maxBody} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => finish(new VncgateError(code(opts.family, 'UNREACHABLE'), `${u.origin}: ${err.message}`, { cause: err })));
      },
    );
    const onAbort = (): void => finish(new VncgateError('SESSION_ERR_SHUTDOWN', 'request aborted'));
    const timer = setTimeout(
      () => finish(new VncgateError(code(opts.family, 'TIMEOUT'), `${opts.method} ${u.origin}${u.pathname} timed out after ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new VncgateError(code(opts.family, 'UNREACHABLE'), `${opts.method} ${u.origin}${u.pathname}: ${err.code ?? err.message}`, { cause: err })),
    );
    req.end(payload);
  });
}

/** Parses a JSON body or fails with a BAD_RESPONSE code naming what was expected. */
export function parseJsonBody(res: HttpResponse, what: string, family: HttpFamily = 'IRONIC'): unknown {
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw new VncgateError(code(family, 'BAD_RESPONSE'), `${what}: response is not JSON (HTTP ${res.status})`);
  }
}

/**
 * Ironic error bodies: {"error_message": "<JSON string of {faultstring, …}>"} (ironic/api/method.py);
 * returns the faultstring when there is one, bounded, for logs.
 */
export function ironicFault(res: HttpResponse): string {
  try {
    const outer = JSON.parse(res.body) as { error_message?: unknown };
    if (typeof outer.error_message === 'string') {
      try {
        const inner = JSON.parse(outer.error_message) as { faultstring?: unknown };
        if (typeof inner.faultstring === 'string') return inner.faultstring.slice(0, 500);
      } catch {
        return outer.error_message.slice(0, 500);
      }
    }
  } catch {
    // not JSON: fall through
  }
  return res.body.slice(0, 200);
}
