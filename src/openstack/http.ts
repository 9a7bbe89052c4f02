import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { VncgateError, type ErrorCode } from '../errors.js';
import type { UpstreamObserver, UpstreamService } from '../observe/upstream.js';

export type HttpResponse = { status: number; headers: IncomingHttpHeaders; body: string };

/**
 * The service a request goes to, as its caller names it: the metric label and the codes its
 * failures carry. This client serves Keystone, Ironic and Nova alike and knows none of them; the
 * caller says whom it is calling, so an error names the service actually called (issue 16: a
 * Keystone failure on the Nova path used to be reported as the bare-metal service's).
 */
export type OpenStackService = {
  /** Metric label (vncgate_upstream_request_seconds{service}) and log name. */
  service: UpstreamService;
  /** No connection, or the connection broke. */
  unreachable: ErrorCode;
  /** No whole answer within the deadline. */
  timeout: ErrorCode;
  /** An answer that is not what the API returns: too large, not JSON. */
  badResponse: ErrorCode;
};

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
  /** Whom this request calls: its failures carry that service's codes. */
  to: OpenStackService;
  /**
   * The URL's path as error messages may show it; the path itself by default. A path that carries
   * a secret (Nova's `/os-console-auth-tokens/{token}`) passes one with the secret blanked.
   */
  pathForErrors?: string;
  /** Told each request's duration; ok = an answer below 500. */
  observe?: UpstreamObserver | undefined;
};

const DEFAULT_MAX_BODY = 1024 * 1024;

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
  const to = opts.to;
  const shownPath = opts.pathForErrors ?? u.pathname;
  const t0 = performance.now();
  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (err: VncgateError | null, res?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      opts.observe?.(to.service, (performance.now() - t0) / 1000, err === null && res !== undefined && res.status < 500);
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
            finish(new VncgateError(to.badResponse, `${to.service}: ${u.origin} sent more than ${maxBody} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => finish(new VncgateError(to.unreachable, `${to.service}: ${u.origin}: ${err.message}`, { cause: err })));
      },
    );
    const onAbort = (): void => finish(new VncgateError('SESSION_ERR_SHUTDOWN', 'request aborted'));
    const timer = setTimeout(
      () => finish(new VncgateError(to.timeout, `${to.service}: ${opts.method} ${u.origin}${shownPath} timed out after ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) =>
      finish(new VncgateError(to.unreachable, `${to.service}: ${opts.method} ${u.origin}${shownPath}: ${err.code ?? err.message}`, { cause: err })),
    );
    req.end(payload);
  });
}

/** Parses a JSON body or fails with the called service's bad-response code, naming what was expected. */
export function parseJsonBody(res: HttpResponse, what: string, from: OpenStackService): unknown {
  try {
    return JSON.parse(res.body) as unknown;
  } catch {
    throw new VncgateError(from.badResponse, `${from.service}: ${what}: response is not JSON (HTTP ${res.status})`);
  }
}

/** A failure worth another attempt: `svc` could not be reached or did not answer in time. */
export function isTransportFailure(err: unknown, svc: OpenStackService): boolean {
  return err instanceof VncgateError && (err.code === svc.unreachable || err.code === svc.timeout);
}

/** The pause before retry `attempt` (1, 2, …) of an idempotent OpenStack call: 200 ms, doubling, at most 2 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(2_000, 200 * 2 ** (attempt - 1));
}

/** Waits `ms`, or rejects with SESSION_ERR_SHUTDOWN as soon as `signal` fires. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new VncgateError('SESSION_ERR_SHUTDOWN', 'aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new VncgateError('SESSION_ERR_SHUTDOWN', 'aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
