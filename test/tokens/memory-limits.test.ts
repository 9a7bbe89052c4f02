import { afterEach, describe, expect, it } from 'vitest';
import { MemoryTokenStore, type ConsoleTarget, type SlotRequest } from '../../src/tokens/index.js';
import { rejectionCode } from './expect-code.js';

/** Session slots and the invalid-link cool-down of the in-process store (issue 15 item 7). */
const target: ConsoleTarget = { kind: 'static', host: '10.0.0.5', port: 5900 };
let now = 1_000_000;
const stores: MemoryTokenStore[] = [];

function makeStore(): MemoryTokenStore {
  const store = new MemoryTokenStore({ now: () => now });
  stores.push(store);
  return store;
}

const slots = (owner: string, keys: string[] = ['target:10.0.0.5:5900'], limit = 2): SlotRequest => ({ keys, owner, limit, ttlMs: 15_000 });

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('MemoryTokenStore session slots', () => {
  it('admits up to the limit, refuses the next, and admits again after a release', async () => {
    const store = makeStore();
    expect(await store.acquireSlots(slots('a'))).toBe(true);
    expect(await store.acquireSlots(slots('b'))).toBe(true);
    expect(await store.acquireSlots(slots('c'))).toBe(false);
    // A holder asking again is not a new session.
    expect(await store.acquireSlots(slots('a'))).toBe(true);
    await store.releaseSlots(['target:10.0.0.5:5900'], 'a');
    expect(await store.acquireSlots(slots('c'))).toBe(true);
  });

  it('counts a session against every key, all or none', async () => {
    const store = makeStore();
    expect(await store.acquireSlots(slots('a', ['target:h:1', 'node:n1'], 1))).toBe(true);
    // Another endpoint of the same node: refused by the node key, and takes nothing on its endpoint.
    expect(await store.acquireSlots(slots('b', ['target:h:2', 'node:n1'], 1))).toBe(false);
    expect(await store.acquireSlots(slots('c', ['target:h:2'], 1))).toBe(true);
  });

  it('frees a slot whose holder stops renewing after the lease TTL, and keeps a renewed one', async () => {
    const store = makeStore();
    expect(await store.acquireSlots(slots('crashed'))).toBe(true);
    expect(await store.acquireSlots(slots('alive'))).toBe(true);
    for (let i = 0; i < 4; i++) {
      now += 5_000;
      await store.renewSlots(['target:10.0.0.5:5900'], 'alive', 15_000);
    }
    // 20 s on: "crashed" lapsed, "alive" did not.
    expect(await store.acquireSlots(slots('new'))).toBe(true);
    expect(await store.acquireSlots(slots('another'))).toBe(false);
  });

  it('takes slots with a consume only if all fit, and then the token is not used up', async () => {
    const store = makeStore();
    const { token, record } = await store.issue(target, 60);
    expect(await store.acquireSlots(slots('a', undefined, 1))).toBe(true);
    expect(await rejectionCode(store.consume(token, { slots: slots('b', undefined, 1) }))).toBe('SESSION_ERR_TARGET_BUSY');
    await expect(store.peek(token)).resolves.toEqual(record);
    await store.releaseSlots(['target:10.0.0.5:5900'], 'a');
    await expect(store.consume(token, { slots: slots('b', undefined, 1) })).resolves.toEqual(record);
    expect(await store.acquireSlots(slots('c', undefined, 1))).toBe(false);
    expect(await rejectionCode(store.consume(token))).toBe('TOKEN_ERR_INVALID');
  });

  it('peek does not use a token up, and refuses unknown or expired ones', async () => {
    const store = makeStore();
    const { token, record } = await store.issue(target, 1);
    await expect(store.peek(token)).resolves.toEqual(record);
    await expect(store.peek(token)).resolves.toEqual(record);
    expect(await rejectionCode(store.peek(null))).toBe('TOKEN_ERR_MISSING');
    now += 1_000;
    expect(await rejectionCode(store.peek(token))).toBe('TOKEN_ERR_INVALID');
  });
});

describe('MemoryTokenStore invalid-link cool-down', () => {
  it('cools an address down after more than the allowance in a minute, for the cool-down only', async () => {
    const store = makeStore();
    const { token } = await store.issue(target, 600);
    for (let i = 0; i < 3; i++) expect(await store.countInvalid('192.0.2.7', 3, 60_000)).toBe(false);
    expect(await store.coolingDown('192.0.2.7')).toBe(false);
    expect(await store.countInvalid('192.0.2.7', 3, 60_000)).toBe(true);
    expect(await store.coolingDown('192.0.2.7')).toBe(true);
    expect(await store.coolingDown('192.0.2.8')).toBe(false);
    // Refused before anything is used up, valid link or not.
    expect(await rejectionCode(store.consume(token, { client: '192.0.2.7' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await rejectionCode(store.peek(token, { client: '192.0.2.7' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    now += 60_000;
    expect(await store.coolingDown('192.0.2.7')).toBe(false);
    await expect(store.consume(token, { client: '192.0.2.7' })).resolves.toBeDefined();
    // The count started afresh after the cool-down.
    expect(await store.countInvalid('192.0.2.7', 3, 60_000)).toBe(false);
  });

  it('counts IPv6 clients by their /64 and IPv4-mapped IPv6 as IPv4: changing address within them does not get around it', async () => {
    const store = makeStore();
    const { token } = await store.issue(target, 600);
    for (let i = 1; i <= 3; i++) expect(await store.countInvalid(`2001:db8:5:6::${i}`, 3, 60_000)).toBe(false);
    expect(await store.countInvalid('2001:db8:5:6:ffff::9', 3, 60_000)).toBe(true);
    expect(await store.coolingDown('2001:db8:5:6:1:2:3:4')).toBe(true);
    expect(await rejectionCode(store.consume(token, { client: '2001:db8:5:6::77' }))).toBe('TOKEN_ERR_RATE_LIMITED');
    expect(await store.coolingDown('2001:db8:5:7::1')).toBe(false);
    for (let i = 0; i < 3; i++) expect(await store.countInvalid('::ffff:192.0.2.10', 3, 60_000)).toBe(false);
    expect(await store.countInvalid('192.0.2.10', 3, 60_000)).toBe(true);
    expect(await store.coolingDown('::ffff:192.0.2.10')).toBe(true);
  });

  it('counts in a one-minute window', async () => {
    const store = makeStore();
    for (let i = 0; i < 3; i++) expect(await store.countInvalid('192.0.2.9', 3, 60_000)).toBe(false);
    now += 60_000;
    for (let i = 0; i < 3; i++) expect(await store.countInvalid('192.0.2.9', 3, 60_000)).toBe(false);
    expect(await store.coolingDown('192.0.2.9')).toBe(false);
  });
});
