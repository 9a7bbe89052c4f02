import { VncgateError } from '../../../src/errors.js';
import { RfbClientHandshake, ServerInitReader, type ClientAction } from '../../../src/rfb/index.js';
import { backendTranscript, clientOptions } from './backend-transcripts.js';
import { forEachChunk, mutate } from './mutate.js';
import type { Rng } from './rng.js';
import type { Transcript } from './script.js';
import { check, checkBuffered, checkOutcome, count, emptyStats, expected, guarded, inputRng, type Outcome, type RoleStats } from './stats.js';
import { readServerInit } from './server-init-role.js';

/**
 * The longest message the client role ever waits for: a VeNCrypt subtype list of 255 U32s plus
 * its count (a reason string is at most 4 + 256). Anything buffered past it means the engine is
 * waiting on a length it should have refused.
 */
const MAX_PENDING_MESSAGE = 1 + 4 * 255;

/** Fuzzes RfbClientHandshake (what a console endpoint sends) with inputs [start, start+count). */
export function fuzzClientRole(seed: number, start: number, count_: number): RoleStats {
  const stats = emptyStats('client');
  for (let index = start; index < start + count_; index++) {
    let input: Buffer = Buffer.alloc(0);
    guarded(stats, seed, index, () => input, () => {
      const rng = inputRng(seed, index);
      const opts = clientOptions(rng);
      const t = variant(rng, backendTranscript(rng, opts));
      input = t.bytes;
      const end = rng.chance(0.15) ? rng.int(t.bytes.length + 1) : t.bytes.length;
      runOne(stats, rng, new RfbClientHandshake(opts), t, end);
    });
  }
  return stats;
}

/** Most transcripts are fed as generated; some mutated, some replaced by random bytes. */
export function variant(rng: Rng, t: Transcript): Transcript {
  const r = rng.int(100);
  if (r < 65) return t;
  if (r < 95) return { bytes: mutate(rng, t.bytes), tlsAt: t.tlsAt, decision: null, serverInit: null };
  const prefix = rng.chance(0.5) ? t.bytes.subarray(0, 12) : Buffer.alloc(0);
  return { bytes: Buffer.concat([prefix, rng.bytes(rng.size(11))]), tlsAt: null, decision: null, serverInit: null };
}

function runOne(stats: RoleStats, rng: Rng, engine: RfbClientHandshake, t: Transcript, end: number): void {
  let terminal: ClientAction | null = null;
  const post: Buffer[] = [];
  const take = (actions: ClientAction[], where: string): void => {
    for (const a of actions) {
      check(terminal === null, () => `${where}: an action after ${terminal?.type}`);
      if (a.type === 'send') check(a.bytes.length > 0 && a.bytes.length <= 2 * 1024 + 8, () => `${where}: send of ${a.bytes.length} bytes`);
      if (a.type === 'failed') {
        check(a.error instanceof VncgateError && a.error.code.startsWith('RFB_ERR_') && !a.error.code.startsWith('RFB_ERR_CLIENT_'), () => `failed with ${a.error.code}`);
      }
      if (a.type === 'established' || a.type === 'failed') terminal = a;
    }
    const settled = engine.state === 'established' || engine.state === 'failed';
    check(settled === (terminal !== null), () => `${where}: state ${engine.state} after ${terminal?.type ?? 'no'} terminal action`);
    checkBuffered(stats, engine.bufferedBytes, settled ? 0 : MAX_PENDING_MESSAGE, () => `${where} in ${engine.state}`);
  };
  const feed = (chunk: Buffer): void => {
    stats.bytesFed += chunk.length;
    if (terminal) post.push(chunk);
    else take(engine.receive(chunk), 'receive');
  };
  const tlsAt = t.tlsAt !== null && t.tlsAt < end ? t.tlsAt : end;
  forEachChunk(rng, t.bytes.subarray(0, tlsAt), feed);
  // The shell wraps the socket in TLS once the plaintext before it has been handled.
  if (engine.state === 'tls') take(engine.tlsEstablished(), 'tlsEstablished');
  forEachChunk(rng, t.bytes.subarray(tlsAt, end), feed);
  if (terminal !== null) check(engine.receive(Buffer.of(0)).length === 0, 'receive() after settling returned actions');

  const done = terminal as ClientAction | null;
  const got: Outcome =
    done?.type === 'established' ? { outcome: 'established', code: null } : done?.type === 'failed' ? { outcome: 'failed', code: done.error.code } : { outcome: 'pending', code: null };
  count(stats, got);
  if (t.decision) checkOutcome(stats, got, expected(t.decision, end));
  if (done?.type !== 'established') return;
  // What follows security belongs to initialisation: handed over whole and in order.
  const rest = Buffer.concat([done.trailing, ...post]);
  if (t.decision) check(rest.equals(t.bytes.subarray(t.decision.at, end)), 'trailing bytes lost or reordered');
  const si = t.serverInit;
  if (si) check(si.at === t.decision?.at, 'the generator put ServerInit somewhere other than right after security');
  readServerInit(stats, rng, new ServerInitReader(), rest, si);
}
