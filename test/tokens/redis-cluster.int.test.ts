import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, RedisTokenStore, type ConsoleTarget, type RedisTokenStoreOptions } from '../../src/tokens/index.js';
import { startRedisCluster, type RedisClusterSet } from '../support/redis-ha.js';
import { rejectionCode } from './expect-code.js';
import { consumeLatency, failoverUnderTraffic } from './failover-traffic.js';

/**
 * issue 17: the token store on a real Redis Cluster — three primaries with two replicas each
 * (a consume waits for one; the promoted replica still has one) — with a primary killed (SIGKILL)
 * under a stream of consumes.
 */
const target: ConsoleTarget = { kind: 'static', host: 'bmc-ha.example', port: 5900 };
let cluster: RedisClusterSet;
const stores: RedisTokenStore[] = [];

function makeStore(options: Partial<RedisTokenStoreOptions> = {}): RedisTokenStore {
  const store = new RedisTokenStore({ cluster: cluster.seeds, keyPrefix: `c${randomBytes(4).toString('hex')}:`, commandTimeoutMs: 3_000, waitTimeoutMs: 1_000, maxReconnectDelayMs: 250, ...options });
  stores.push(store);
  return store;
}

beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 2, nodeTimeoutMs: 1_000 });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await cluster?.dispose();
});

describe('issue 17: Redis Cluster', () => {
  it('spreads tokens over the shards, takes session slots and cool-downs across slots, and measures WAIT', async () => {
    const store = makeStore();
    const notWaiting = makeStore({ waitReplicas: 0 });
    await Promise.all([store.ready(), notWaiting.ready()]);
    // A freshly created cluster's replicas can be online before their first acknowledgement
    // reaches the primary, and WAIT answers 0 until then: the first writes may be refused ("try
    // again", as a user would be told). Retry, bounded, until replication acknowledges.
    let issued: Awaited<ReturnType<RedisTokenStore['issueMany']>> | undefined;
    const deadline = Date.now() + 30_000;
    while (issued === undefined) {
      try {
        issued = await store.issueMany(target, 600, 30);
      } catch (err) {
        if ((err as { code?: string }).code !== 'TOKEN_ERR_STORE_UNAVAILABLE' || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const shards = new Set(await Promise.all(issued.map((i) => cluster.primaryPortFor(`x:{${hashToken(i.token)}}`))));
    expect(shards.size).toBe(3);

    // Consume with a session limit: the slot set lives on another shard than the token.
    const slots = { keys: ['target:bmc-ha.example:5900', 'node:n1'], owner: 'session-a', limit: 1, ttlMs: 10_000 };
    await expect(store.consume(issued[0]!.token, { slots, client: '192.0.2.1' })).resolves.toMatchObject({ target });
    expect(await rejectionCode(store.consume(issued[1]!.token, { slots: { ...slots, owner: 'session-b' } }))).toBe('SESSION_ERR_TARGET_BUSY');
    // Refused for a busy target: the link stays unused.
    await store.releaseSlots(slots.keys, 'session-a');
    await expect(store.consume(issued[1]!.token, { slots: { ...slots, owner: 'session-b' } })).resolves.toMatchObject({ target });
    // An invalid link gives the slots it took first back at once.
    await store.releaseSlots(slots.keys, 'session-b');
    expect(await rejectionCode(store.consume(issued[0]!.token, { slots: { ...slots, owner: 'session-c' } }))).toBe('TOKEN_ERR_INVALID');
    expect(await store.acquireSlots({ ...slots, owner: 'session-d' })).toBe(true);
    // Cool-down: counter and mark share the address' slot.
    expect(await store.countInvalid('192.0.2.9', 0, 10_000)).toBe(true);
    expect(await rejectionCode(store.consume(issued[2]!.token, { client: '192.0.2.9' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(store.peek(issued[2]!.token, { client: '192.0.2.9' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    await expect(store.peek(issued[2]!.token)).resolves.toMatchObject({ target });
    expect(await store.revoke(issued[2]!.token)).toBe(true);
    expect(await rejectionCode(store.consume(issued[2]!.token))).toBe('TOKEN_ERR_INVALID');
    expect(await store.claimOnce('nova:abc', 10_000)).toBe(true);
    expect(await store.claimOnce('nova:abc', 10_000)).toBe(false);

    await consumeLatency(store, 50);
    const without = await consumeLatency(notWaiting, 300);
    const withWait = await consumeLatency(store, 300);
    console.log(`issue 17 figure: consume latency on Redis Cluster, 300 sequential: WAIT 0 p50 ${without.p50} ms p99 ${without.p99} ms; WAIT 1 p50 ${withWait.p50} ms p99 ${withWait.p99} ms`);
  });

  it('never accepts a used token after a replica is promoted; unused tokens keep working', async () => {
    const store = makeStore();
    await store.ready();
    // Kill the primary of the shard that holds the first key slot the stream will use most: any one.
    const victimPort = await cluster.primaryPortFor('x:{probe}');
    const victim = cluster.nodes.find((n) => n.port === victimPort)!;
    const outcome = await failoverUnderTraffic(store, () => victim.kill(), {
      usedBefore: 100,
      stream: 2_000,
      fresh: 100,
      resumeTimeoutMs: 30_000,
      afterResume: 20,
      // Resumed means: a token on the killed primary's shard works again.
      onVictim: async (t) => (await cluster.primaryPortFor(`x:{${hashToken(t)}}`)) === victimPort,
    });
    const nowPort = await cluster.primaryPortFor('x:{probe}');
    console.log(`issue 17 figure: Redis Cluster failover (node-timeout 1000 ms): consumes on the killed primary's shard resumed ${outcome.resumeMs} ms after SIGKILL (other shards kept serving); ${JSON.stringify(outcome)}; shard primary ${victimPort} -> ${nowPort}`);
    expect(nowPort).not.toBe(victimPort);
    expect(outcome.doubleAccepted).toBe(0);
    expect(outcome.usedRefusedAfter).toBe(outcome.usedTotal);
    expect(outcome.freshWorked).toBe(outcome.freshTotal);
    expect(outcome.otherErrors).toEqual({});
  }, 60_000);
});
