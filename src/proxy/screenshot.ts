import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import type { Logger } from 'pino';
import { VncgateError, toVncgateError } from '../errors.js';
import { FramebufferReader, SECURITY_CHOICES, SECURITY_TYPE_NAMES, VENCRYPT_SUBTYPE_NAMES, pngFile, type Framebuffer, type FramebufferLimits } from '../rfb/index.js';
import type { ResolvedTarget } from '../target.js';
import { connectBackend, exchangeInit, targetConnectOptions, type BackendConnection } from './backend-connector.js';
import { socketErrorCode } from './backend-tcp.js';

const deflateAsync = promisify(deflate);

/** How long one screenshot or console check may take, and how large a frame it accepts. */
export type ConsoleProbeOptions = {
  /** TCP connect deadline (at most what is left of the deadline). */
  connectTimeoutMs: number;
  /** Aborted at the overall deadline (see withDeadline) or when the caller goes away. */
  signal: AbortSignal;
  /** Milliseconds left until the overall deadline, asked before each step. */
  remainingMs: () => number;
  log?: Pick<Logger, 'warn' | 'debug'>;
};

/** What the endpoint's handshake and ServerInit said. */
export type ConsoleFacts = {
  security: { choice: string; type: string; subtype: string | null };
  desktopName: string;
  width: number;
  height: number;
  timings: { connectMs: number; tlsMs: number | null; handshakeMs: number; serverInitMs: number };
};

export type Screenshot = ConsoleFacts & {
  png: Buffer;
  frame: { width: number; height: number };
  /** Rectangles received, by encoding. */
  rectangles: Readonly<Record<string, number>>;
  frameMs: number;
  pngMs: number;
};

/**
 * Runs `work` with a signal aborted after `timeoutMs` (or when `outer` aborts); rejects with
 * BACKEND_ERR_TIMEOUT at the deadline whatever `work` is waiting on.
 */
export async function withDeadline<T>(timeoutMs: number, outer: AbortSignal | undefined, work: (signal: AbortSignal, remainingMs: () => number) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const until = performance.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const onOuter = (): void => ac.abort();
  if (outer?.aborted) ac.abort();
  else outer?.addEventListener('abort', onOuter, { once: true });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new VncgateError('BACKEND_ERR_TIMEOUT', `not finished within ${timeoutMs} ms`));
      ac.abort();
    }, timeoutMs);
  });
  try {
    return await Promise.race([work(ac.signal, () => Math.max(1, Math.round(until - performance.now()))), deadline]);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onOuter);
    ac.abort();
  }
}

/** Connects, authenticates as the target's profile says, sends a *shared* ClientInit and reads ServerInit. */
async function open(target: ResolvedTarget, opts: ConsoleProbeOptions): Promise<{ conn: BackendConnection; facts: ConsoleFacts; trailing: Buffer }> {
  const conn = await connectBackend({
    ...targetConnectOptions(target),
    connectTimeoutMs: Math.min(opts.connectTimeoutMs, opts.remainingMs()),
    handshakeTimeoutMs: opts.remainingMs(),
    signal: opts.signal,
    ...(opts.log ? { log: opts.log } : {}),
  });
  try {
    // Shared (ClientInit 1): a user's session on the same console is not disconnected.
    const { init, trailing, ms } = await exchangeInit(conn, true, opts.remainingMs());
    const choice = SECURITY_CHOICES[conn.info.security];
    const facts: ConsoleFacts = {
      security: {
        choice: conn.info.security,
        type: SECURITY_TYPE_NAMES[choice.type] ?? String(choice.type),
        subtype: choice.subtype === null ? null : (VENCRYPT_SUBTYPE_NAMES[choice.subtype] ?? String(choice.subtype)),
      },
      desktopName: init.name,
      width: init.width,
      height: init.height,
      timings: { connectMs: round(conn.timings.connectMs), tlsMs: conn.timings.tlsMs === null ? null : round(conn.timings.tlsMs), handshakeMs: round(conn.timings.handshakeMs), serverInitMs: round(ms) },
    };
    return { conn, facts, trailing };
  } catch (err) {
    conn.socket.destroy();
    throw err;
  }
}

/** The console check: handshake and ServerInit, then the connection is closed. */
export async function checkConsole(target: ResolvedTarget, opts: ConsoleProbeOptions): Promise<ConsoleFacts> {
  const { conn, facts } = await open(target, opts);
  conn.socket.destroy();
  return facts;
}

/** One full frame from the console, as a PNG (deflated on libuv's thread pool, not the event loop). */
export async function takeScreenshot(target: ResolvedTarget, opts: ConsoleProbeOptions & { limits: FramebufferLimits; pngLevel?: number }): Promise<Screenshot> {
  const { conn, facts, trailing } = await open(target, opts);
  const t0 = performance.now();
  let frame: { fb: Framebuffer; rectangles: Readonly<Record<string, number>> };
  try {
    frame = await readFrame(conn, trailing, { width: facts.width, height: facts.height }, opts.limits, opts.signal);
  } finally {
    conn.socket.destroy();
  }
  const { fb, rectangles } = frame;
  const frameMs = performance.now() - t0;
  const t1 = performance.now();
  const idat = await deflateAsync(fb.scanlines, { level: opts.pngLevel ?? 6 });
  if (opts.signal.aborted) throw new VncgateError('BACKEND_ERR_TIMEOUT', 'deadline passed while compressing the screenshot');
  const png = pngFile(fb.width, fb.height, idat);
  return { ...facts, png, frame: { width: fb.width, height: fb.height }, rectangles, frameMs: round(frameMs), pngMs: round(performance.now() - t1) };
}

/** Drives a FramebufferReader over the connection until it has a frame; the caller closes the socket. */
function readFrame(conn: BackendConnection, trailing: Buffer, size: { width: number; height: number }, limits: FramebufferLimits, signal: AbortSignal): Promise<{ fb: Framebuffer; rectangles: Readonly<Record<string, number>> }> {
  const { socket } = conn;
  const reader = new FramebufferReader(size, limits);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: VncgateError | null, fb?: Framebuffer): void => {
      if (settled) return;
      settled = true;
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve({ fb: fb!, rectangles: reader.rectangles });
    };
    const apply = (actions: ReturnType<FramebufferReader['receive']>): void => {
      for (const a of actions) {
        if (a.type === 'send') socket.write(a.bytes);
        else if (a.type === 'done') return finish(null, a.framebuffer);
        else return finish(a.error);
      }
    };
    const onData = (chunk: Buffer): void => {
      try {
        apply(reader.receive(chunk));
      } catch (err) {
        finish(toVncgateError(err));
      }
      // The reader copied what it needed: the receive buffer may be reused (read-buffer.ts).
      conn.reads?.reclaim();
    };
    const onClose = (): void => finish(new VncgateError('BACKEND_ERR_CLOSED', `console endpoint closed the connection before a whole frame arrived (state ${reader.state})`));
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(new VncgateError(socketErrorCode(err), `console endpoint connection error: ${err.code ?? err.message}`, { cause: err }));
    const onAbort = (): void => finish(new VncgateError('BACKEND_ERR_TIMEOUT', `no whole frame before the deadline (state ${reader.state})`));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    apply(reader.start());
    if (!settled && trailing.length > 0) apply(reader.receive(trailing));
    if (!settled) socket.resume();
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
