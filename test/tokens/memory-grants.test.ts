import { describe, expect, it } from 'vitest';
import { decodeGrant, encodeGrant, MemoryGrantStore, MemoryTokenStore, type GrantRecord } from '../../src/tokens/index.js';
import { grantStoreContract } from './grant-contract.js';

describe('memory grant store', () => {
  let now = 1_000_000;
  grantStoreContract(
    async () => new MemoryGrantStore(() => now),
    async (ms) => {
      now += ms;
    },
    1_000,
  );

  it('the memory token store carries one, on its own clock', () => {
    expect(new MemoryTokenStore().grants).toBeInstanceOf(MemoryGrantStore);
  });

  it('is bounded: past maxGrants a mint fails (the session gets no grant)', async () => {
    const store = new MemoryGrantStore(() => now, 2);
    const r: GrantRecord = { version: 1, sessionId: 's', target: { kind: 'node', node: 'n1' }, notAfterMs: null, reconnects: 0 };
    const b = { client: '', key: 'k' };
    await store.mint('a'.repeat(43), r, b, 1000);
    await store.mint('b'.repeat(43), r, b, 1000);
    await expect(store.mint('c'.repeat(43), r, b, 1000)).rejects.toThrow(/full/);
    now += 2000;
    await store.mint('c'.repeat(43), r, b, 1000);
    expect(store.size).toBe(1);
  });
});

describe('grant records', () => {
  const r: GrantRecord = { version: 1, sessionId: 'abc', target: { kind: 'static', host: 'h', port: 1, profile: 'p' }, notAfterMs: 5, reconnects: 3, issuedBy: { via: 'api', sub: 'u' }, policy: { viewOnly: true, clipboard: 'none', maxClipboardBytes: Infinity } };
  it('round-trips', () => {
    expect(decodeGrant(encodeGrant(r))).toEqual(r);
  });
  it('refuses anything else', () => {
    for (const bad of ['', 'null', '[]', '{}', JSON.stringify({ ...r, version: 2 }), JSON.stringify({ ...r, reconnects: -1 }), JSON.stringify({ ...r, target: { kind: 'x' } }), JSON.stringify({ ...r, notAfterMs: 'x' }), 'x'.repeat(5000)]) {
      expect(decodeGrant(bad)).toBeNull();
    }
  });
});
