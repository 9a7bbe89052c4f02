/**
 * `npx tsx scripts/bench-client-filter.mts [--mib 16] [--rounds 7]`
 *
 * Cost of the issue 18 ClientMessageFilter on the browser-to-console relay path, per MiB of input
 * and per chunk, for allowed traffic and for traffic with drops, beside a baseline that only hands
 * each chunk on. Input is noVNC-shaped: pointer events (70 %), key events (20 %) and incremental
 * update requests (10 %), either one message per chunk (noVNC flushes each message as its own
 * WebSocket message) or cut into 64 KiB chunks at arbitrary offsets (heads split across chunks);
 * plus a 1 MiB clipboard paste in 64 KiB chunks, allowed and dropped. Medians over the rounds;
 * figures only, no verdicts (a shared machine is noisy).
 */
import { parseArgs } from 'node:util';
import { ClientMessageFilter, type ClientMessagePolicy } from '../src/rfb/index.js';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '16' }, rounds: { type: 'string', default: '7' } } });
const MIB = Number(values.mib);
const ROUNDS = Number(values.rounds);

const POINTER = Buffer.from('05010010002000', 'hex').subarray(0, 6);
const KEY = Buffer.from('040100000000006100', 'hex').subarray(0, 8);
const FBUR = Buffer.from('0301000000000400030000', 'hex').subarray(0, 10);

/** noVNC-shaped input of about `bytes` bytes, and the offsets where its messages start. */
function inputTraffic(bytes: number): { data: Buffer; starts: number[] } {
  const parts: Buffer[] = [];
  const starts: number[] = [];
  let at = 0;
  let seed = 1;
  while (at < bytes) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const r = (seed >>> 16) % 10;
    const m = r < 7 ? POINTER : r < 9 ? KEY : FBUR;
    parts.push(m);
    starts.push(at);
    at += m.length;
  }
  return { data: Buffer.concat(parts), starts };
}

function clipboardPaste(bytes: number): Buffer {
  const b = Buffer.alloc(8 + bytes, 0x41);
  b.writeUInt32BE(0x06000000, 0);
  b.writeUInt32BE(bytes, 4);
  return b;
}

function cut(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

const OPEN: ClientMessagePolicy = { viewOnly: false, clipboard: 'both', maxClipboardBytes: Infinity };
const INTERACTIVE: ClientMessagePolicy = { viewOnly: false, clipboard: 'none', maxClipboardBytes: 1 << 20 };
const VIEW_ONLY: ClientMessagePolicy = { viewOnly: true, clipboard: 'none', maxClipboardBytes: 1 << 20 };

type Case = { name: string; chunks: Buffer[]; policy: ClientMessagePolicy | null };

const traffic = inputTraffic(MIB * 2 ** 20);
const perMessage = traffic.starts.map((s, i) => traffic.data.subarray(s, traffic.starts[i + 1] ?? traffic.data.length));
const in64k = cut(traffic.data, 64 * 1024);
const paste = cut(Buffer.concat(Array.from({ length: MIB }, () => clipboardPaste(2 ** 20 - 8))), 64 * 1024);

const CASES: Case[] = [
  { name: 'input, 1 message/chunk: baseline (no filter)', chunks: perMessage, policy: null },
  { name: 'input, 1 message/chunk: allowed (interactive)', chunks: perMessage, policy: INTERACTIVE },
  { name: 'input, 1 message/chunk: 90% dropped (view-only)', chunks: perMessage, policy: VIEW_ONLY },
  { name: 'input, 64 KiB chunks: baseline (no filter)', chunks: in64k, policy: null },
  { name: 'input, 64 KiB chunks: allowed (interactive)', chunks: in64k, policy: INTERACTIVE },
  { name: 'input, 64 KiB chunks: 90% dropped (view-only)', chunks: in64k, policy: VIEW_ONLY },
  { name: 'clipboard 1 MiB pastes, 64 KiB chunks: allowed', chunks: paste, policy: OPEN },
  { name: 'clipboard 1 MiB pastes, 64 KiB chunks: dropped', chunks: paste, policy: INTERACTIVE },
];

let sink = 0;
const forward = (b: Buffer): void => {
  sink += b.length;
};

function once(c: Case): number {
  const filter = c.policy ? new ClientMessageFilter(c.policy) : null;
  const t0 = performance.now();
  if (filter) for (const chunk of c.chunks) filter.receive(chunk, forward);
  else for (const chunk of c.chunks) forward(chunk);
  return performance.now() - t0;
}

for (const c of CASES) once(c); // warm-up: JIT every path
const rows = CASES.map((c) => {
  const ms = Array.from({ length: ROUNDS }, () => once(c)).sort((a, b) => a - b)[ROUNDS >> 1]!;
  const mib = c.chunks.reduce((n, b) => n + b.length, 0) / 2 ** 20;
  return { case: c.name, chunks: c.chunks.length, mib: +mib.toFixed(2), msPerMiB: +(ms / mib).toFixed(3), nsPerChunk: +((ms * 1e6) / c.chunks.length).toFixed(1) };
});
console.log(JSON.stringify({ command: `npx tsx scripts/bench-client-filter.mts --mib ${MIB} --rounds ${ROUNDS}`, node: process.version, rows, sink: sink > 0 }, null, 2));
