/**
 * `npx tsx scripts/bench-screenshot.mts [--width 1920] [--height 1080] [--rounds 7]`
 *
 * Cost of a screenshot's CPU work (issue 18 item 5) for one frame: decoding it with the
 * FramebufferReader, as Raw (one rectangle, fed in 64 KiB chunks) and as Hextile (solid tiles with
 * a few subrectangles, the shape of a text console), then compressing the PNG at zlib levels 1 and
 * 6. Beside a baseline measured in the same run: copying the Raw bytes once (memcpy), so the
 * figures read as ratios on any machine. Medians over the rounds; figures only, no verdicts.
 */
import { parseArgs } from 'node:util';
import { deflateSync } from 'node:zlib';
import { FramebufferReader, pngFile, type Framebuffer } from '../src/rfb/index.js';

const { values } = parseArgs({ options: { width: { type: 'string', default: '1920' }, height: { type: 'string', default: '1080' }, rounds: { type: 'string', default: '7' } } });
const W = Number(values.width);
const H = Number(values.height);
const ROUNDS = Number(values.rounds);

function rectHeader(x: number, y: number, w: number, h: number, encoding: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(x, 0);
  b.writeUInt16BE(y, 2);
  b.writeUInt16BE(w, 4);
  b.writeUInt16BE(h, 6);
  b.writeInt32BE(encoding, 8);
  return b;
}

/** A FramebufferUpdate of one Raw rectangle: a text-console-like image (dark, with light strokes). */
function rawFrame(): Buffer {
  const px = Buffer.alloc(4 * W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if ((x * 7 + y * 13) % 97 < 9) px.writeUInt32LE(0x00c0c0c0, 4 * (y * W + x));
  return Buffer.concat([Buffer.from([0, 0, 0, 1]), rectHeader(0, 0, W, H, 0), px]);
}

/** The same size in Hextile: each tile a background and 6 plain subrectangles in the foreground. */
function hextileFrame(): Buffer {
  const tiles: Buffer[] = [];
  const bg = Buffer.from([0, 0, 0, 0]);
  const fg = Buffer.from([0xc0, 0xc0, 0xc0, 0]);
  for (let ty = 0; ty < H; ty += 16) {
    for (let tx = 0; tx < W; tx += 16) {
      const tw = Math.min(16, W - tx);
      const th = Math.min(16, H - ty);
      const subs = [0, 1, 2, 3, 4, 5].map((i) => Buffer.from([((i * 2) % tw << 4) | (i % th), 0]));
      tiles.push(Buffer.from([2 | 4 | 8]), bg, fg, Buffer.from([subs.length]), ...subs);
    }
  }
  return Buffer.concat([Buffer.from([0, 0, 0, 1]), rectHeader(0, 0, W, H, 5), ...tiles]);
}

function decode(frame: Buffer): Framebuffer {
  const r = new FramebufferReader({ width: W, height: H }, { maxWidth: 8192, maxHeight: 8192, maxCutTextBytes: 1 << 20, maxRequests: 4 });
  r.start();
  for (let off = 0; off < frame.length; off += 65_536) {
    for (const a of r.receive(frame.subarray(off, off + 65_536))) if (a.type === 'done') return a.framebuffer;
  }
  throw new Error('no frame');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const raw = rawFrame();
const hextile = hextileFrame();
const fb = decode(raw);
const rows: Record<string, number[]> = { 'baseline: copy the Raw bytes once': [], 'decode Raw': [], 'decode Hextile': [], 'PNG, zlib level 1': [], 'PNG, zlib level 6': [] };
let pngBytes = { l1: 0, l6: 0 };
for (let round = 0; round <= ROUNDS; round++) {
  const t = {
    base: time(() => Buffer.from(raw)),
    raw: time(() => decode(raw)),
    hextile: time(() => decode(hextile)),
    l1: time(() => (pngBytes.l1 = pngFile(W, H, deflateSync(fb.scanlines, { level: 1 })).length)),
    l6: time(() => (pngBytes.l6 = pngFile(W, H, deflateSync(fb.scanlines, { level: 6 })).length)),
  };
  if (round === 0) continue; // warm-up
  rows['baseline: copy the Raw bytes once']!.push(t.base);
  rows['decode Raw']!.push(t.raw);
  rows['decode Hextile']!.push(t.hextile);
  rows['PNG, zlib level 1']!.push(t.l1);
  rows['PNG, zlib level 6']!.push(t.l6);
}
const base = median(rows['baseline: copy the Raw bytes once']!);
process.stdout.write(`screenshot CPU work, ${W}x${H}, median of ${ROUNDS} rounds (Raw ${(raw.length / 1048576).toFixed(1)} MiB, Hextile ${(hextile.length / 1048576).toFixed(2)} MiB on the wire; PNG ${pngBytes.l1} B at level 1, ${pngBytes.l6} B at level 6)\n`);
for (const [name, xs] of Object.entries(rows)) process.stdout.write(`  ${name.padEnd(36)} ${median(xs).toFixed(1).padStart(8)} ms  ${(median(xs) / base).toFixed(1).padStart(6)}x baseline\n`);
