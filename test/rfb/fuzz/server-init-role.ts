import { VncgateError } from '../../../src/errors.js';
import { LIMITS, ServerInitReader, type ServerInitResult } from '../../../src/rfb/index.js';
import { serverInitBytes } from './backend-transcripts.js';
import { forEachChunk, mutate } from './mutate.js';
import type { Rng } from './rng.js';
import { check, checkOutcome, count, emptyStats, guarded, inputRng, type Outcome, type RoleStats } from './stats.js';

const HEADER = 24; // §7.3.2: width, height, PIXEL_FORMAT, name length

/**
 * Feeds `bytes` to a ServerInitReader in a random chunking and checks it: a result is final, `raw`
 * plus `trailing` is exactly what was fed, names stay within the bound, and — when `expect`
 * describes the ServerInit `bytes` starts with — the outcome is the one its name length calls for.
 */
export function readServerInit(stats: RoleStats | null, rng: Rng, reader: ServerInitReader, bytes: Buffer, expect: { nameLength: number } | null): Outcome {
  let result: ServerInitResult = { type: 'pending' };
  const after: Buffer[] = [];
  forEachChunk(rng, bytes, (chunk) => {
    if (result.type !== 'pending') after.push(chunk);
    else result = reader.receive(chunk);
  });
  const r = result as ServerInitResult;
  let got: Outcome = { outcome: 'pending', code: null };
  if (r.type === 'failed') {
    check(r.error instanceof VncgateError && r.error.code === 'RFB_ERR_LIMIT', () => `ServerInit failed with ${r.error.code}`);
    got = { outcome: 'failed', code: r.error.code };
  } else if (r.type === 'done') {
    const declared = r.raw.readUInt32BE(20);
    check(declared <= LIMITS.maxDesktopNameBytes && r.raw.length === HEADER + declared, () => `ServerInit raw of ${r.raw.length} bytes`);
    check(Buffer.byteLength(r.init.name) <= declared, 'desktop name longer than declared');
    check(Buffer.concat([r.raw, r.trailing, ...after]).equals(bytes), 'ServerInit bytes lost or reordered');
    got = { outcome: 'established', code: null };
  }
  if (expect && stats) {
    // A declared length past the bound fails as soon as the header is in, never waiting for the name.
    const want: Outcome =
      bytes.length < HEADER
        ? { outcome: 'pending', code: null }
        : expect.nameLength > LIMITS.maxDesktopNameBytes
          ? { outcome: 'failed', code: 'RFB_ERR_LIMIT' }
          : bytes.length >= HEADER + expect.nameLength
            ? { outcome: 'established', code: null }
            : { outcome: 'pending', code: null };
    checkOutcome(stats, got, want);
  }
  return got;
}

/** Fuzzes ServerInitReader alone: generated ServerInits, mutated ones, random bytes. */
export function fuzzServerInit(seed: number, start: number, count_: number): RoleStats {
  const stats = emptyStats('serverInit');
  for (let index = start; index < start + count_; index++) {
    let input: Buffer = Buffer.alloc(0);
    guarded(stats, seed, index, () => input, () => {
      const rng = inputRng(seed, index);
      const init = serverInitBytes(rng);
      const r = rng.int(100);
      let expect: { nameLength: number } | null = { nameLength: init.nameLength };
      input = init.bytes;
      if (r < 15) input = input.subarray(0, rng.int(input.length + 1));
      else if (r < 30) input = Buffer.concat([input, rng.bytes(rng.size(12))]);
      else if (r < 85) {
        input = mutate(rng, input);
        expect = null;
      } else {
        input = rng.bytes(rng.size(13));
        expect = null;
      }
      stats.bytesFed += input.length;
      count(stats, readServerInit(stats, rng, new ServerInitReader(), input, expect));
    });
  }
  return stats;
}
