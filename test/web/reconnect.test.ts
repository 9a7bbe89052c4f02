import { describe, expect, it } from 'vitest';
import { isWellFormedGrant } from '../../src/tokens/index.js';
import { pageKeyFrom } from '../../src/proxy/reconnect.js';
import { grantUrl, KEY_PROTOCOL_PREFIX, newPageKey, PageGrant } from '../../web/src/reconnect.js';

/** The page's side of reconnect grants (web/src/reconnect.ts), under Node. */
const G1 = 'A'.repeat(43);
const G2 = 'B'.repeat(42) + 'A';

describe('page grant', () => {
  it('the page key has the format vncgate accepts, offered as a subprotocol vncgate reads back', () => {
    const g = new PageGrant();
    expect(isWellFormedGrant(g.key)).toBe(true);
    expect(g.protocol).toBe(`${KEY_PROTOCOL_PREFIX}${g.key}`);
    expect(pageKeyFrom(`vncgate.v1, binary, ${g.protocol}`)).toBe(g.key);
    expect(newPageKey()).not.toBe(newPageKey());
  });

  it('without a grant the link is used as given; with one, grant= replaces the token', () => {
    const g = new PageGrant();
    const link = 'wss://h:8443/websockify?node=n1&token=tok';
    expect(g.next(link)).toBe(link);
    expect(g.accept({ type: 'reconnect', grant: G1, ttlSeconds: 60 })).toBe(true);
    const u = new URL(g.next(link));
    expect(u.searchParams.get('grant')).toBe(G1);
    expect(u.searchParams.has('token')).toBe(false);
    expect(u.searchParams.get('node')).toBe('n1');
    expect(grantUrl('ws://h/websockify?token=x', G2)).toBe(`ws://h/websockify?grant=${G2}`);
  });

  it('refuses malformed messages; a newer grant replaces the older one', () => {
    const g = new PageGrant();
    for (const bad of [{ grant: 'short', ttlSeconds: 60 }, { grant: G1 }, { grant: G1, ttlSeconds: -1 }, { grant: 5, ttlSeconds: 60 }]) expect(g.accept(bad)).toBe(false);
    expect(g.usable()).toBe(false);
    g.accept({ grant: G1, ttlSeconds: 60 });
    g.accept({ grant: G2, ttlSeconds: 60 });
    expect(new URL(g.next('ws://h/?token=t')).searchParams.get('grant')).toBe(G2);
  });

  it('the window runs from the drop; a refusal forgets the grant', () => {
    const g = new PageGrant();
    g.accept({ grant: G1, ttlSeconds: 10 });
    // Held while the session lives, however long.
    expect(g.usable(Date.now() + 3_600_000)).toBe(true);
    g.dropped(1_000);
    g.dropped(5_000);
    expect(g.usable(10_999)).toBe(true);
    expect(g.usable(11_000)).toBe(false);
    g.accept({ grant: G1, ttlSeconds: 10 });
    g.forget();
    expect(g.usable()).toBe(false);
  });
});
