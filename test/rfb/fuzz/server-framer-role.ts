import { ServerMessageFramer } from '../../../src/rfb/server-message-framing.js';
import { stream, type Message, type Rect } from '../server-message-vectors.js';
import { forEachChunk, mutate } from './mutate.js';
import type { Rng } from './rng.js';
import { check, checkOutcome, count, emptyStats, guarded, inputRng, type Outcome, type RoleStats } from './stats.js';

function rect(rng: Rng): Rect {
  const dim = (): number => rng.int(41);
  switch (rng.int(8)) {
    case 0:
      return { kind: 'raw', w: dim(), h: dim() };
    case 1:
      return { kind: 'copyRect', w: dim(), h: dim() };
    case 2: {
      const w = 1 + rng.int(20);
      const h = 1 + rng.int(20);
      return { kind: 'rre', w, h, subrects: rng.int(w * h + 1) };
    }
    case 3:
      return { kind: 'hextile', w: dim(), h: dim(), subencodings: Array.from({ length: rng.int(8) }, () => rng.int(32)), counts: Array.from({ length: rng.int(4) }, () => rng.int(256)) };
    case 4:
      return { kind: 'cursor', w: rng.int(34), h: rng.int(34) };
    case 5:
      return { kind: 'desktopSize', w: rng.int(4001), h: rng.int(4001) };
    case 6:
      return { kind: 'extendedDesktopSize', w: rng.int(4001), h: rng.int(4001), status: rng.int(4), screens: rng.int(4) };
    default:
      return { kind: 'qemuKey' };
  }
}

function message(rng: Rng): Message {
  switch (rng.int(10)) {
    case 0:
      return { kind: 'colourMap', colours: rng.int(21) };
    case 1:
      return { kind: 'bell' };
    case 2:
      return { kind: 'cutText', length: rng.int(300), extended: rng.chance(0.5) };
    case 3:
      return { kind: 'fence', payload: rng.int(256) };
    case 4:
      return rng.chance(0.5) ? { kind: 'xvp' } : { kind: 'endOfContinuousUpdates' };
    default:
      return { kind: 'update', rects: Array.from({ length: rng.int(6) }, () => rect(rng)), lastRect: rng.chance(0.3) };
  }
}

/**
 * Fuzzes ServerMessageFramer (issue 18, shared consoles) with inputs [start, start+count): generated
 * server message streams fed whole (the oracle: exactly the boundaries the messages were built
 * with) or truncated (a prefix of them), mutated or random (then: never a throw, boundaries in
 * order and within what was fed, failures only RFB_ERR_PROTOCOL or RFB_ERR_LIMIT). Random
 * chunkings throughout. "established": the stream ended at a message boundary; "pending": inside one.
 */
export function fuzzServerFramer(seed: number, start: number, count_: number): RoleStats {
  const stats = emptyStats('serverFramer');
  for (let index = start; index < start + count_; index++) {
    let input: Buffer = Buffer.alloc(0);
    guarded(stats, seed, index, () => input, () => {
      const rng = inputRng(seed, index);
      const s = stream(Array.from({ length: rng.int(12) }, () => message(rng)));
      const r = rng.int(100);
      let oracle: 'exact' | 'prefix' | null = 'exact';
      input = s.bytes;
      if (r < 15) {
        input = s.bytes.subarray(0, rng.int(s.bytes.length + 1));
        oracle = 'prefix';
      } else if (r >= 60 && r < 90) {
        input = mutate(rng, s.bytes);
        oracle = null;
      } else if (r >= 90) {
        input = rng.bytes(rng.size(11));
        oracle = null;
      }
      stats.bytesFed += input.length;
      const framer = new ServerMessageFramer(4);
      const ends: number[] = [];
      let base = 0;
      let code: string | null = null;
      const sink = { messageEnd: (_t: number, end: number) => ends.push(base + end), desktopSize: () => {}, cursor: () => {} };
      forEachChunk(rng, input, (chunk) => {
        if (code) return;
        const e = framer.receive(chunk, sink);
        if (e) code = e.code;
        base += chunk.length;
      });
      for (let i = 0; i < ends.length; i++) check(ends[i]! <= input.length && (i === 0 || ends[i]! > ends[i - 1]!), 'boundaries out of order or past the input');
      if (code !== null) check(code === 'RFB_ERR_PROTOCOL' || code === 'RFB_ERR_LIMIT', () => `failed with ${code}`);
      const got: Outcome = code ? { outcome: 'failed', code } : { outcome: framer.atBoundary ? 'established' : 'pending', code: null };
      const want = s.ends.map((e) => e.end);
      if (oracle === 'exact') {
        checkOutcome(stats, got, { outcome: 'established', code: null });
        check(ends.length === want.length && ends.every((e, i) => e === want[i]), 'boundaries other than the messages were built with');
      } else if (oracle === 'prefix') {
        check(code === null, 'a truncated generated stream failed');
        const within = want.filter((e) => e <= input.length);
        check(ends.length === within.length && ends.every((e, i) => e === within[i]), 'boundaries of a truncated stream are not the built ones within it');
      }
      count(stats, got);
    });
  }
  return stats;
}
