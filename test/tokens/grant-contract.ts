import { expect, it } from 'vitest';
import { bindingHash, generateGrant, type GrantRecord, type GrantStore } from '../../src/tokens/index.js';
import { rejectionCode } from './expect-code.js';

/**
 * What every grant store must do (memory-grants.ts, redis-grants.ts), run against each. `make`
 * gives a fresh store; `advance` moves its clock (or waits out real time for Redis).
 */
export function grantStoreContract(make: () => Promise<GrantStore>, advance: (ms: number) => Promise<void>, unit: number): void {
  const record: GrantRecord = { version: 1, sessionId: 'sess-1', target: { kind: 'static', host: '10.0.0.5', port: 5900 }, notAfterMs: null, reconnects: 2, issuedBy: { via: 'cli' } };
  const page = { client: bindingHash('192.0.2.7'), key: bindingHash(generateGrant()) };
  const mark = 100 * unit;

  it('gives the record once to the same page and address, and refuses a second use', async () => {
    const store = await make();
    const g = generateGrant();
    await store.mint(g, record, page, 10 * unit);
    expect(await store.consume(g, page, mark)).toEqual(record);
    expect(await rejectionCode(store.consume(g, page, mark))).toBe('RECONNECT_ERR_INVALID');
  });

  it('refuses another address or another key, and leaves the grant to its page', async () => {
    const store = await make();
    const g = generateGrant();
    await store.mint(g, record, page, 10 * unit);
    expect(await rejectionCode(store.consume(g, { ...page, client: bindingHash('198.51.100.1') }, mark))).toBe('RECONNECT_ERR_INVALID');
    expect(await rejectionCode(store.consume(g, { ...page, key: bindingHash(generateGrant()) }, mark))).toBe('RECONNECT_ERR_INVALID');
    expect(await store.consume(g, page, mark)).toEqual(record);
  });

  it('bound to the key only (client ""), accepts any address with the key', async () => {
    const store = await make();
    const g = generateGrant();
    await store.mint(g, record, { client: '', key: page.key }, 10 * unit);
    expect(await store.consume(g, { ...page, client: bindingHash('198.51.100.1') }, mark)).toEqual(record);
  });

  it('refuses an unknown grant', async () => {
    const store = await make();
    expect(await rejectionCode(store.consume(generateGrant(), page, mark))).toBe('RECONNECT_ERR_INVALID');
  });

  it('a policy end deletes it; a drop leaves it for the grace window only', async () => {
    const store = await make();
    const policy = generateGrant();
    await store.mint(policy, record, page, 10 * unit);
    await store.end(policy, null);
    expect(await rejectionCode(store.consume(policy, page, mark))).toBe('RECONNECT_ERR_INVALID');

    // Margins are wide on the side that must still work: the machine may stall (real time for Redis).
    const drop = generateGrant();
    await store.mint(drop, record, page, 100 * unit);
    await store.end(drop, 100 * unit);
    expect(await store.consume(drop, page, mark)).toEqual(record);
    const late = generateGrant();
    await store.mint(late, record, page, 100 * unit);
    await store.end(late, 2 * unit);
    await advance(3 * unit);
    expect(await rejectionCode(store.consume(late, page, mark))).toBe('RECONNECT_ERR_INVALID');
  });

  it('renewal keeps a live session\'s grant; without renewal it is lost', async () => {
    const store = await make();
    const g = generateGrant();
    await store.mint(g, record, page, 10 * unit);
    for (let i = 0; i < 3; i++) {
      // Three renewals span more than the first TTL: without them it would be gone.
      await advance(4 * unit);
      expect(await store.renew(g, 10 * unit)).toBe('held');
    }
    await advance(11 * unit);
    expect(await store.renew(g, 10 * unit)).toBe('lost');
    expect(await rejectionCode(store.consume(g, page, mark))).toBe('RECONNECT_ERR_INVALID');
  });

  it('renewing a grant a reconnect used says so (its session was replaced) while the mark lasts; a put-back clears it', async () => {
    const store = await make();
    const used = generateGrant();
    await store.mint(used, record, page, 10 * unit);
    await store.consume(used, page, 2 * unit);
    expect(await store.renew(used, 10 * unit)).toBe('used');
    await advance(3 * unit);
    expect(await store.renew(used, 10 * unit)).toBe('lost');
    const back = generateGrant();
    await store.mint(back, record, page, 100 * unit);
    await store.consume(back, page, mark);
    await store.mint(back, record, page, 100 * unit);
    expect(await store.renew(back, 100 * unit)).toBe('held');
  });

  it('of concurrent uses exactly one wins', async () => {
    const store = await make();
    const g = generateGrant();
    await store.mint(g, record, page, 10 * unit);
    const results = await Promise.all(Array.from({ length: 8 }, () => rejectionCode(store.consume(g, page, mark))));
    expect(results.filter((r) => r === 'RESOLVED')).toHaveLength(1);
    expect(results.filter((r) => r === 'RECONNECT_ERR_INVALID')).toHaveLength(7);
  });
}
