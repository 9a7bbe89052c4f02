import { performance } from 'node:perf_hooks';
import { isVncgateError } from '../../src/errors.js';
import type { ConsoleTarget, TokenStore } from '../../src/tokens/index.js';
import { sleep } from '../support/proc.js';

/**
 * The failover scenario of issue 17, for any replicated store: tokens are issued and some used;
 * then a stream of consumes runs while `kill` takes the primary away; then every token is tried
 * again. Returns what happened, for the test to assert and print.
 */
export interface FailoverOutcome {
  /** From the kill to the first consume that succeeded after it, ms. */
  resumeMs: number;
  /** Consumes refused with TOKEN_ERR_STORE_UNAVAILABLE during the stream. */
  refusedDuringStream: number;
  /** Other errors during the stream, by code. */
  otherErrors: Record<string, number>;
  /** Tokens accepted more than once: must be 0. */
  doubleAccepted: number;
  /** Tokens used before the kill or during the stream, all refused with TOKEN_ERR_INVALID afterwards. */
  usedRefusedAfter: number;
  usedTotal: number;
  /** Tokens never presented before, tried after the failover: how many worked. */
  freshWorked: number;
  freshTotal: number;
  freshErrors: Record<string, number>;
  /** "Try again" answers after consumes had resumed (each retried after 100 ms). */
  lateRefusals: number;
  /** Tokens refused with "try again" during the stream, tried again: worked / were gone. */
  retriedWorked: number;
  retriedGone: number;
}

const target: ConsoleTarget = { kind: 'static', host: 'bmc-ha.example', port: 5900 };

async function attempt(store: TokenStore, token: string): Promise<'ok' | string> {
  try {
    await store.consume(token);
    return 'ok';
  } catch (err) {
    return isVncgateError(err) ? err.code : `unexpected: ${String(err)}`;
  }
}

/**
 * After the failover: "try again shortly" is retried (as a user would), every 100 ms for up to
 * 5 s, so a late reconnect (the Sentinels' +switch-master can drop a connection once more) does
 * not read as a wrong answer. Only STORE_UNAVAILABLE is retried; counted in `lateRefusals`.
 */
let lateRefusals = 0;
async function settledAttempt(store: TokenStore, token: string): Promise<'ok' | string> {
  for (let i = 0; ; i++) {
    const r = await attempt(store, token);
    if (r !== 'TOKEN_ERR_STORE_UNAVAILABLE' || i >= 50) return r;
    lateRefusals++;
    await sleep(100);
  }
}

export async function failoverUnderTraffic(
  store: TokenStore,
  kill: () => Promise<void>,
  opts: {
    usedBefore: number;
    stream: number;
    fresh: number;
    resumeTimeoutMs: number;
    afterResume: number;
    /** Only consumes of tokens it accepts count as "resumed" (a cluster: the killed primary's shard). */
    onVictim?: (token: string) => Promise<boolean>;
  },
): Promise<FailoverOutcome> {
  const tokens: string[] = [];
  for (let left = opts.usedBefore + opts.stream + opts.fresh; left > 0; left -= 500) {
    tokens.push(...(await store.issueMany(target, 600, Math.min(500, left))).map((i) => i.token));
  }
  const accepted = new Map<string, number>();
  const accept = (t: string): void => {
    accepted.set(t, (accepted.get(t) ?? 0) + 1);
  };
  for (const t of tokens.slice(0, opts.usedBefore)) {
    if ((await attempt(store, t)) !== 'ok') throw new Error('a consume before the failover failed');
    accept(t);
  }
  let streamPool = tokens.slice(opts.usedBefore, opts.usedBefore + opts.stream);
  if (opts.onVictim) {
    const onVictim = opts.onVictim;
    const marks = await Promise.all(streamPool.map(async (t) => [t, await onVictim(t)] as const));
    streamPool = marks.filter(([, v]) => v).map(([t]) => t);
  }
  const fresh = tokens.slice(opts.usedBefore + opts.stream);
  const refused: string[] = [];
  const otherErrors: Record<string, number> = {};
  let killedAt: number | null = null;
  /** When `kill` returned: only consumes started after it count as resumed (not one in flight). */
  let killDoneAt: number | null = null;
  let resumedAt: number | null = null;
  let okAfterResume = 0;
  let next = 0;

  // One consume every ~10 ms, in two lanes, until the store has served `afterResume` consumes
  // after the kill, or the deadline.
  const lane = async (): Promise<void> => {
    while (next < streamPool.length) {
      if (resumedAt !== null && okAfterResume >= opts.afterResume) return;
      if (killedAt !== null && performance.now() - killedAt > opts.resumeTimeoutMs) return;
      const t = streamPool[next++]!;
      const startedAt = performance.now();
      const r = await attempt(store, t);
      if (r === 'ok') {
        accept(t);
        if (killDoneAt !== null && startedAt >= killDoneAt) {
          resumedAt ??= performance.now();
          okAfterResume++;
        }
      } else if (r === 'TOKEN_ERR_STORE_UNAVAILABLE') refused.push(t);
      else otherErrors[r] = (otherErrors[r] ?? 0) + 1;
      await sleep(10);
    }
  };
  const lanes = Promise.all([lane(), lane()]);
  await sleep(500);
  killedAt = performance.now();
  await kill();
  killDoneAt = performance.now();
  await lanes;
  if (resumedAt === null) throw new Error(`consumes did not resume within ${opts.resumeTimeoutMs} ms (refused ${refused.length}, other ${JSON.stringify(otherErrors)})`);

  lateRefusals = 0;
  let usedRefusedAfter = 0;
  const used = [...accepted.keys()];
  for (const t of used) {
    const r = await settledAttempt(store, t);
    if (r === 'ok') accept(t);
    else if (r === 'TOKEN_ERR_INVALID') usedRefusedAfter++;
  }
  let retriedWorked = 0;
  let retriedGone = 0;
  for (const t of refused) {
    const r = await settledAttempt(store, t);
    if (r === 'ok') {
      accept(t);
      retriedWorked++;
    } else if (r === 'TOKEN_ERR_INVALID') retriedGone++;
  }
  let freshWorked = 0;
  const freshErrors: Record<string, number> = {};
  for (const t of fresh) {
    const r = await settledAttempt(store, t);
    if (r === 'ok') {
      accept(t);
      freshWorked++;
    } else freshErrors[r] = (freshErrors[r] ?? 0) + 1;
  }
  return {
    resumeMs: Math.round(resumedAt - killedAt),
    refusedDuringStream: refused.length,
    otherErrors,
    doubleAccepted: [...accepted.values()].filter((n) => n > 1).length,
    usedRefusedAfter,
    usedTotal: used.length,
    freshWorked,
    freshTotal: fresh.length,
    freshErrors,
    lateRefusals,
    retriedWorked,
    retriedGone,
  };
}

/** Median and 99th percentile of `n` sequential issue+consume pairs, consume time only, ms. */
export async function consumeLatency(store: TokenStore, n: number): Promise<{ p50: number; p99: number }> {
  const tokens = (await store.issueMany(target, 600, n)).map((i) => i.token);
  const times: number[] = [];
  for (const t of tokens) {
    const t0 = performance.now();
    await store.consume(t);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}
