import WebSocket from 'ws';
import { RfbClientHandshake, ServerInitReader, clientInit, type ClientHandshakeInfo, type ServerInit } from '../../src/rfb/index.js';

export type WsRfbResult =
  | { ok: true; info: ClientHandshakeInfo; init: ServerInit; ws: WebSocket; protocol: string }
  | { ok: false; code: string; serverReason: string | undefined; closeCode: number | undefined };

/**
 * Plays noVNC's part over a real WebSocket: RFB 3.8 with security None toward vncgate, then
 * ClientInit/ServerInit. Resolves with the ServerInit, or with the failure reason vncgate sent.
 */
export function wsRfbConnect(
  url: string,
  opts: {
    origin?: string;
    protocols?: string[];
    timeoutMs?: number;
    ca?: Buffer | string;
    rejectUnauthorized?: boolean;
    headers?: Record<string, string>;
    /** The client's own address, e.g. 127.0.0.2 to be another client on loopback. */
    localAddress?: string;
    /** Text frames (vncgate's control channel, with protocols including vncgate.v1), as they arrive. */
    onText?: (text: string) => void;
  } = {},
): Promise<WsRfbResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? ['binary'], {
      ...(opts.origin !== undefined ? { origin: opts.origin } : {}),
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.headers !== undefined ? { headers: opts.headers } : {}),
      ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
      rejectUnauthorized: opts.rejectUnauthorized ?? true,
      perMessageDeflate: false,
    });
    const engine = new RfbClientHandshake({ security: ['none'] });
    let reader: ServerInitReader | null = null;
    let info: ClientHandshakeInfo | null = null;
    let done = false;
    let failure: { code: string; serverReason: string | undefined } | null = null;
    const timer = setTimeout(() => finish(() => reject(new Error(`no result from ${url} within ${opts.timeoutMs ?? 10_000} ms`))), opts.timeoutMs ?? 10_000);
    function finish(f: () => void): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      f();
    }
    const onInit = (chunk: Buffer): void => {
      const r = reader!.receive(chunk);
      if (r.type === 'done') {
        ws.off('message', onMessage);
        finish(() => resolve({ ok: true, info: info!, init: r.init, ws, protocol: ws.protocol }));
      } else if (r.type === 'failed') finish(() => reject(r.error));
    };
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      // Text frames are vncgate's control channel (protocols including vncgate.v1), not RFB.
      if (!isBinary) return void opts.onText?.(data.toString('utf8'));
      if (reader) return onInit(data);
      for (const a of engine.receive(data)) {
        if (a.type === 'send') ws.send(a.bytes);
        else if (a.type === 'failed') {
          // The close frame that follows completes the picture (see the 'close' handler).
          failure = { code: a.error.code, serverReason: a.error.details?.serverReason as string | undefined };
          setTimeout(() => finish(() => resolve({ ok: false, ...failure!, closeCode: undefined })), 2_000).unref();
          return;
        } else if (a.type === 'established') {
          info = a.info;
          reader = new ServerInitReader();
          ws.send(clientInit(true));
          if (a.trailing.length > 0) onInit(a.trailing);
          return;
        }
      }
    };
    ws.on('message', onMessage);
    ws.on('unexpected-response', (_req, res) =>
      finish(() => resolve({ ok: false, code: `HTTP_${res.statusCode}`, serverReason: undefined, closeCode: undefined })),
    );
    ws.on('error', (err) => finish(() => reject(err)));
    ws.on('close', (code) => finish(() => resolve({ ok: false, ...(failure ?? { code: 'CLOSED', serverReason: undefined }), closeCode: code })));
  });
}
