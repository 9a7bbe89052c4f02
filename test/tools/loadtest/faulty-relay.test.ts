import { connect as netConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { MemoryFloor } from '../../../tools/loadtest/meminfo.js';
import { runLoadtest, type LoadMode, type LoadtestResult } from '../../../tools/loadtest/runner.js';
import { NoTokenSource } from '../../../tools/loadtest/token-source.js';
import { wsConnector } from '../../../tools/loadtest/ws-client.js';
import { startSyntheticServer, type SyntheticServer } from '../../../tools/synthetic/index.js';

/**
 * The load tester's own correctness: it must notice when the relay it measures loses or alters a
 * byte. The relays here are deliberately broken WebSocket-to-TCP relays (no vncgate involved): the
 * same bytes as a good relay, except one dropped or flipped at a chosen offset of one direction.
 */
type Fault = { kind: 'none' } | { kind: 'drop' | 'corrupt'; direction: 'toBrowser' | 'toServer'; at: number };

type Relay = { url: string; faulted: () => boolean; close: () => Promise<void> };

async function startRelay(serverPort: number, fault: Fault): Promise<Relay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let faulted = false;
  /** Applies the fault to the chunk covering stream offset `at` of its direction. */
  const tamper = (chunk: Buffer, from: number, direction: 'toBrowser' | 'toServer'): Buffer => {
    if (fault.kind === 'none' || fault.direction !== direction || faulted) return chunk;
    const i = fault.at - from;
    if (i < 0 || i >= chunk.length) return chunk;
    faulted = true;
    if (fault.kind === 'drop') return Buffer.concat([chunk.subarray(0, i), chunk.subarray(i + 1)]);
    const copy = Buffer.from(chunk);
    copy[i]! ^= 0xff;
    return copy;
  };
  wss.on('connection', (ws) => {
    const tcp = netConnect({ host: '127.0.0.1', port: serverPort, noDelay: true });
    let down = 0;
    let up = 0;
    tcp.on('data', (d: Buffer) => {
      const out = tamper(d, down, 'toBrowser');
      down += d.length;
      if (out.length > 0) ws.send(out);
    });
    ws.on('message', (d: Buffer) => {
      const out = tamper(d, up, 'toServer');
      up += d.length;
      if (out.length > 0) tcp.write(out);
    });
    tcp.on('close', () => ws.close());
    tcp.on('error', () => ws.terminate());
    ws.on('close', () => tcp.destroy());
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    faulted: () => faulted,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

function drive(url: string, mode: LoadMode): Promise<LoadtestResult> {
  return runLoadtest({
    mode,
    label: url,
    connect: () => wsConnector({ url, timeoutMs: 5_000, origin: null }),
    tokens: new NoTokenSource(),
    sessions: 1,
    concurrency: 1,
    durationMs: 1_000,
    updatesPerSession: 0,
    pipeline: 1,
    security: ['none'],
    setupTimeoutMs: 5_000,
    // A dropped last byte leaves an update incomplete: the deadline turns that into an error.
    updateTimeoutMs: 2_000,
    verify: true,
    memFloor: new MemoryFloor(0),
    sampler: null,
  });
}

// The synthetic server's side of the handshake before the first update: ProtocolVersion (12),
// security types (2), SecurityResult (4), ServerInit (24 + the 14-byte name "vncgate stream").
const HANDSHAKE = 12 + 2 + 4 + 24 + 14;
// Stream updates of one 1024-pixel row: a 4-byte FramebufferUpdate header, a 12-byte rectangle header, 4096 pixel bytes.
const UPDATE = 4 + 12 + 4096;

let stream: SyntheticServer;
let pingpong: SyntheticServer;
beforeAll(async () => {
  stream = await startSyntheticServer({ mode: 'stream', streamUpdateBytes: 4096 });
  pingpong = await startSyntheticServer({ mode: 'pingpong' });
});
afterAll(async () => {
  await stream.close();
  await pingpong.close();
});

async function withRelay(server: SyntheticServer, fault: Fault, mode: LoadMode): Promise<{ result: LoadtestResult; faulted: boolean }> {
  const relay = await startRelay(server.port, fault);
  try {
    const result = await drive(relay.url, mode);
    return { result, faulted: relay.faulted() };
  } finally {
    await relay.close();
  }
}

describe('the load tester against relays that lose or alter one byte', () => {
  it('a faithful relay: no errors, every byte checked', async () => {
    const { result } = await withRelay(stream, { kind: 'none' }, 'stream');
    expect(result.errors).toEqual({});
    expect(result.sessions).toMatchObject({ established: 1, failed: 0 });
    expect(result.throughput!.updates).toBeGreaterThan(10);
    expect(result.throughput!.payloadBytes).toBe(result.throughput!.updates * 4096);
  });

  const detected = ['payload-mismatch', 'rfb-protocol', 'timeout-update'];
  it.each([
    ['a pixel byte', HANDSHAKE + 3 * UPDATE + 16 + 1000],
    ['a rectangle header byte', HANDSHAKE + 5 * UPDATE + 4 + 5],
    ['a message type byte', HANDSHAKE + 7 * UPDATE],
    ['the last byte of an update', HANDSHAKE + 9 * UPDATE - 1],
  ])('drops %s: detected', async (_what, at) => {
    const { result, faulted } = await withRelay(stream, { kind: 'drop', direction: 'toBrowser', at }, 'stream');
    expect(faulted).toBe(true);
    expect(result.sessions.failed).toBe(1);
    expect(Object.keys(result.errors)).toHaveLength(1);
    expect(detected).toContain(Object.keys(result.errors)[0]);
  });

  it.each([
    ['a pixel byte', HANDSHAKE + 3 * UPDATE + 16 + 1000, 'payload-mismatch'],
    ['the first pixel byte (the seq header)', HANDSHAKE + 2 * UPDATE + 16, 'payload-mismatch'],
    ['a message type byte', HANDSHAKE + 4 * UPDATE, 'rfb-protocol'],
    ['a rectangle encoding byte', HANDSHAKE + 6 * UPDATE + 4 + 11, 'rfb-protocol'],
  ])('corrupts %s: detected as %s', async (_what, at, reason) => {
    const { result, faulted } = await withRelay(stream, { kind: 'corrupt', direction: 'toBrowser', at }, 'stream');
    expect(faulted).toBe(true);
    expect(result.sessions.failed).toBe(1);
    expect(result.errors).toEqual({ [reason]: 1 });
    expect(result.errorSamples[0]?.detail).toBeTruthy();
  });

  it('corrupts the 4-byte pixel of a 1x1 pingpong update: detected', async () => {
    // pingpong ServerInit names "vncgate pingpong" (16 bytes); updates are 4 + 12 + 4 bytes.
    const at = 12 + 2 + 4 + 24 + 16 + 10 * 20 + 16 + 2;
    const { result, faulted } = await withRelay(pingpong, { kind: 'corrupt', direction: 'toBrowser', at }, 'pingpong');
    expect(faulted).toBe(true);
    expect(result.errors).toEqual({ 'payload-mismatch': 1 });
  });

  it('corrupts a request on its way to the server: the session fails and says how', async () => {
    // Client to server: ProtocolVersion (12), security choice (1), ClientInit (1), SetPixelFormat
    // (20), SetEncodings (8), then 10-byte FramebufferUpdateRequests; flip a request's type byte.
    const at = 12 + 1 + 1 + 20 + 8 + 10 * 5;
    const { result, faulted } = await withRelay(stream, { kind: 'corrupt', direction: 'toServer', at }, 'stream');
    expect(faulted).toBe(true);
    expect(result.sessions.failed).toBe(1);
    expect(Object.keys(result.errors)[0]).toMatch(/^closed-by-peer|^timeout-update/);
  });
});
