import { CLIENT_MESSAGE_KINDS, CLIENT_MESSAGE_LIMITS, ClientMessageFilter, resolveClientMessagePolicy, type ClientMessagePolicy, type ClipboardPolicy } from '../../../src/rfb/index.js';
import { clientStream, expectedForward } from './client-stream.js';
import { forEachChunk, mutate } from './mutate.js';
import type { Rng } from './rng.js';
import { check, checkBuffered, checkOutcome, count, emptyStats, guarded, inputRng, type Outcome, type RoleStats } from './stats.js';

/** The most the filter may hold: the head of one message, at most a whole SetEncodings. */
const MAX_HEAD = 4 + 4 * CLIENT_MESSAGE_LIMITS.maxEncodings;
const CLIPBOARD: readonly ClipboardPolicy[] = ['none', 'to-browser', 'to-remote', 'both'];

function policy(rng: Rng): ClientMessagePolicy {
  return {
    viewOnly: rng.chance(0.4),
    clipboard: rng.pick(CLIPBOARD),
    maxClipboardBytes: rng.chance(0.2) ? Infinity : rng.size(11),
    allowResize: rng.chance(0.7),
    allowPower: rng.chance(0.7),
  };
}

/**
 * Fuzzes ClientMessageFilter (issue 18) with inputs [start, start+count): generated message streams
 * under random policies, fed whole or truncated (the oracle: exactly what the policy table keeps,
 * or a prefix of it), mutated or random (then: never a throw, a held head within its bound, bytes
 * accounted for, and a failure only with RFB_ERR_CLIENT_PROTOCOL). "established" here means the
 * stream ended at a message boundary, "pending" inside a message.
 */
export function fuzzClientFilter(seed: number, start: number, count_: number): RoleStats {
  const stats = emptyStats('clientFilter');
  for (let index = start; index < start + count_; index++) {
    let input: Buffer = Buffer.alloc(0);
    guarded(stats, seed, index, () => input, () => {
      const rng = inputRng(seed, index);
      const p = policy(rng);
      const rules = resolveClientMessagePolicy(p);
      const messages = clientStream(rng, rng.int(24), rules.unrestricted);
      const whole = Buffer.concat(messages.map((m) => m.bytes));
      const r = rng.int(100);
      let oracle: 'exact' | 'prefix' | null = 'exact';
      input = whole;
      if (r < 15) {
        input = whole.subarray(0, rng.int(whole.length + 1));
        oracle = 'prefix';
      } else if (r < 90 && r >= 60) {
        input = mutate(rng, whole);
        oracle = null;
      } else if (r >= 90) {
        input = rng.bytes(rng.size(11));
        oracle = null;
      }
      stats.bytesFed += input.length;
      const got = runOne(stats, rng, new ClientMessageFilter(p), input);
      if (oracle) {
        const want = expectedForward(messages, rules);
        if (oracle === 'exact') {
          checkOutcome(stats, got.outcome, { outcome: 'established', code: null });
          check(got.out.equals(want.out), 'forwarded other than the policy table says');
          for (const k of CLIENT_MESSAGE_KINDS) check(got.dropped[k] === (want.dropped[k] ?? 0), () => `dropped ${got.dropped[k]} ${k}, expected ${want.dropped[k] ?? 0}`);
        } else {
          check(got.outcome.code === null, 'a truncated generated stream failed');
          check(want.out.subarray(0, got.out.length).equals(got.out), 'forwarded bytes are not a prefix of what the whole stream forwards');
        }
      }
      count(stats, got.outcome);
    });
  }
  return stats;
}

function runOne(stats: RoleStats, rng: Rng, filter: ClientMessageFilter, input: Buffer): { outcome: Outcome; out: Buffer; dropped: Record<string, number> } {
  const parts: Buffer[] = [];
  let code: string | null = null;
  let fed = 0;
  forEachChunk(rng, input, (chunk) => {
    if (code) return;
    fed += chunk.length;
    const e = filter.receive(chunk, (b) => parts.push(b));
    checkBuffered(stats, filter.bufferedBytes, MAX_HEAD, () => `after ${fed} bytes`);
    if (e) code = e.code;
  });
  const s = filter.stats();
  if (code === null) {
    // Every byte fed is forwarded, dropped (a rewrite's removed encodings included) or held.
    check(s.forwardedBytes + s.droppedBytes + filter.bufferedBytes === fed, () => `${s.forwardedBytes} forwarded + ${s.droppedBytes} dropped + ${filter.bufferedBytes} held != ${fed} fed`);
  } else check(code === 'RFB_ERR_CLIENT_PROTOCOL', () => `failed with ${code}`);
  const out = Buffer.concat(parts);
  check(out.length === s.forwardedBytes, 'forwardedBytes miscounted');
  const outcome: Outcome = code ? { outcome: 'failed', code } : { outcome: filter.inMessage ? 'pending' : 'established', code: null };
  return { outcome, out, dropped: s.dropped };
}
