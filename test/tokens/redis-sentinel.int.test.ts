import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTokenStore, type ConsoleTarget, type RedisTokenStoreOptions } from '../../src/tokens/index.js';
import { sleep } from '../support/proc.js';
import { eventually, onlineReplicas, startSentinelSet, withAdmin, type SentinelSet } from '../support/redis-ha.js';
import { rejectionCode } from './expect-code.js';
import { consumeLatency, failoverUnderTraffic } from './failover-traffic.js';

/**
 * issue 17: the token store through Redis Sentinel — a real primary, two replicas and three
 * `redis-sentinel` processes — with the primary killed (SIGKILL) under a stream of consumes.
 * Two replicas, because a consume waits for one (`WAIT 1`): after the failover the promoted
 * primary still has one.
 */
const target: ConsoleTarget = { kind: 'static', host: 'bmc-ha.example', port: 5900 };
/** A generous deadline for the first consume after the kill (typically 2–3 s; a loaded machine is slower). */
const RESUME_DEADLINE_MS = 45_000;
let set: SentinelSet;
const stores: RedisTokenStore[] = [];

function makeStore(options: Partial<RedisTokenStoreOptions> = {}): RedisTokenStore {
  const store = new RedisTokenStore({
    sentinels: set.sentinelEndpoints,
    sentinelName: set.name,
    keyPrefix: `s${randomBytes(4).toString('hex')}:`,
    commandTimeoutMs: 1_000,
    maxReconnectDelayMs: 250,
    ...options,
  });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  set = await startSentinelSet({ replicas: 2, downAfterMs: 1_000, failoverTimeoutMs: 3_000 });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await set?.dispose();
});

describe('issue 17: Redis Sentinel failover', () => {
  it('measures what WAIT costs a consume', async () => {
    const waiting = makeStore();
    const notWaiting = makeStore({ waitReplicas: 0 });
    await Promise.all([waiting.ready(), notWaiting.ready()]);
    await consumeLatency(waiting, 50);
    const without = await consumeLatency(notWaiting, 300);
    const withWait = await consumeLatency(waiting, 300);
    console.log(`issue 17 figure: consume latency via Sentinel, 300 sequential: WAIT 0 p50 ${without.p50} ms p99 ${without.p99} ms; WAIT 1 p50 ${withWait.p50} ms p99 ${withWait.p99} ms`);
    expect(withWait.p50).toBeGreaterThan(0);
  });

  it('refuses a consume no replica acknowledged, and the link still works afterwards', async () => {
    const store = makeStore({ waitTimeoutMs: 150 });
    const [issued] = await store.issueMany(target, 600, 1);
    const replicas = set.nodes.slice(1);
    for (const r of replicas) r.signal('SIGSTOP');
    try {
      expect(await rejectionCode(store.consume(issued!.token))).toBe('TOKEN_ERR_STORE_UNAVAILABLE');
    } finally {
      for (const r of replicas) r.signal('SIGCONT');
    }
    await eventually('replicas back', 10_000, async () => (await onlineReplicas(set.nodes[0]!.port)) === 2);
    await expect(store.consume(issued!.token)).resolves.toMatchObject({ target });
    expect(await rejectionCode(store.consume(issued!.token))).toBe('TOKEN_ERR_INVALID');
  });

  // A primary that is frozen (SIGSTOP), not dead: its connection never breaks, and with no traffic
  // nothing times out. Only the Sentinels' +switch-master can move an idle store off it
  // (redis-switch-watch.ts); the first consume after that must work at once.
  it('moves an idle store off a frozen primary when the Sentinels announce the switch', { timeout: 120_000 }, async () => {
    const own = await startSentinelSet({ replicas: 2, downAfterMs: 1_000, failoverTimeoutMs: 3_000 });
    const oldPort = await own.primaryPort();
    const oldPrimary = own.nodes.find((n) => n.port === oldPort)!;
    try {
      const infos: string[] = [];
      const logger = { debug: () => undefined, warn: () => undefined, info: (_: unknown, msg: string) => void infos.push(msg) };
      const store = makeStore({ sentinels: own.sentinelEndpoints, sentinelName: own.name, logger });
      const tokens = (await store.issueMany(target, 600, 2)).map((i) => i.token);
      await expect(store.consume(tokens[0]!)).resolves.toMatchObject({ target });
      const t0 = performance.now();
      oldPrimary.signal('SIGSTOP');
      await eventually('the Sentinels name a new primary', 60_000, async () => (await own.primaryPort()) !== oldPort);
      await eventually('the store reconnects on +switch-master', 30_000, async () => infos.includes('Redis Sentinel switched the primary; reconnecting'));
      await eventually('the store is connected again', 30_000, async () => {
        await store.ready();
        return true;
      });
      const moved = performance.now() - t0;
      await eventually('the new primary has a replica for WAIT', 30_000, async () => (await onlineReplicas(await own.primaryPort())) >= 1);
      // One attempt: a store still on the frozen primary would time out here.
      await expect(store.consume(tokens[1]!)).resolves.toMatchObject({ target });
      console.log(`issue 17 figure: idle store moved off a frozen primary ${Math.round(moved)} ms after SIGSTOP (down-after 1000 ms)`);
    } finally {
      oldPrimary.signal('SIGCONT');
      await own.dispose();
    }
  });

  // The store once never resumed in about one run in three: ioredis' failover detector dropped
  // the connection while a reconnect was asking a Sentinel for the primary, and ioredis then ended
  // the client for good. vncgate now watches +switch-master itself (redis-switch-watch.ts) and
  // starts an ended client again (redis-link.ts, #onEnd). The second case widens that window on
  // purpose: one Sentinel is frozen, so every reconnect that asks it waits a whole command timeout
  // while the other two promote the replica and announce +switch-master.
  for (const frozenSentinel of [false, true]) {
    const title = frozenSentinel
      ? 'resumes after the failover while one Sentinel is frozen (+switch-master during a reconnect)'
      : 'never accepts a used token after the replica is promoted; unused tokens keep working';
    it(title, { timeout: 180_000 }, async () => {
      const own = await startSentinelSet({ replicas: 2, downAfterMs: 1_000, failoverTimeoutMs: 3_000 });
      const frozen = frozenSentinel ? own.sentinels[0] : undefined;
      try {
        const warnings: string[] = [];
        const logger = { debug: () => undefined, info: () => undefined, warn: (_: unknown, msg: string) => void warnings.push(msg) };
        const store = makeStore({ sentinels: own.sentinelEndpoints, sentinelName: own.name, logger });
        await store.ready();
        const primaryPort = await own.primaryPort();
        const oldPrimary = own.nodes.find((n) => n.port === primaryPort)!;
        expect(oldPrimary).toBeDefined();
        // When the third Sentinel (never frozen) names the new primary; it may hear of it a second
        // after the others. A slow failover on the Sentinels' side shows here.
        let switchedAt: number | null = null;
        let killAt = 0;
        let polling = true;
        const poll = (async () => {
          while (polling && switchedAt === null) {
            const port = await withAdmin(own.sentinels[2]!.port, async (a) => Number(((await a.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', own.name)) as string[])[1])).catch(() => oldPrimary.port);
            if (port !== oldPrimary.port) switchedAt = performance.now();
            await sleep(50);
          }
        })();
        const outcome = await failoverUnderTraffic(
          store,
          async () => {
            killAt = performance.now();
            frozen?.signal('SIGSTOP');
            await oldPrimary.kill();
          },
          {
            usedBefore: 100,
            // Enough for the whole deadline: two lanes, at least 10 ms per consume.
            stream: (2 * RESUME_DEADLINE_MS) / 10 + 200,
            fresh: 100,
            resumeTimeoutMs: RESUME_DEADLINE_MS,
            afterResume: 50,
          },
        );
        polling = false;
        await poll;
        frozen?.signal('SIGCONT');
        await eventually('the Sentinels name a new primary', 30_000, async () => (await own.primaryPort()) !== oldPrimary.port);
        const newPrimary = await own.primaryPort();
        console.log(
          `issue 17 figure: Sentinel failover (down-after 1000 ms${frozenSentinel ? ', one Sentinel frozen' : ''}): consumes resumed ${outcome.resumeMs} ms after SIGKILL of the primary (the third Sentinel named the new primary after ${switchedAt === null ? '?' : Math.round(switchedAt - killAt)} ms); client restarts after ioredis gave up: ${warnings.filter((w) => w.includes('starting it again')).length}; ${JSON.stringify(outcome)}; primary ${oldPrimary.port} -> ${newPrimary}`,
        );
        expect(outcome.doubleAccepted).toBe(0);
        expect(outcome.usedRefusedAfter).toBe(outcome.usedTotal);
        expect(outcome.freshWorked).toBe(outcome.freshTotal);
        expect(outcome.otherErrors).toEqual({});
      } finally {
        frozen?.signal('SIGCONT');
        await own.dispose();
      }
    });
  }
});
