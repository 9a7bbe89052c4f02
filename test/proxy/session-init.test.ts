import { describe, expect, it } from 'vitest';
import { LIMITS, type ServerInit } from '../../src/rfb/index.js';
import { Initialisation } from '../../src/proxy/session-init.js';

// The ClientInit/ServerInit hand-off of issue 16's split, sans I/O: what the session used to do inline.
const init = { width: 1024, height: 768 } as unknown as ServerInit;
const serverInit = Buffer.from('server-init');

describe('Initialisation (RFC 6143 §7.3 hand-off)', () => {
  it('is complete once both halves are in, in either order, and forwards ServerInit with what followed it', () => {
    for (const endpointFirst of [true, false]) {
      const x = new Initialisation('shared');
      if (endpointFirst) x.fromEndpoint(serverInit, Buffer.from('+more'), init);
      expect(x.complete).toBe(false);
      expect(x.fromBrowser(Buffer.from([1, 9, 9]))).toEqual({});
      if (!endpointFirst) {
        expect(x.complete).toBe(false);
        x.fromEndpoint(serverInit, Buffer.from('+more'), init);
      }
      expect(x.complete).toBe(true);
      const t = x.take();
      expect(t.serverInit.toString()).toBe('server-init+more');
      expect(t.browserTrailing).toEqual(Buffer.from([9, 9]));
      expect(t.shared).toBe(true);
      expect(() => x.take()).toThrow();
    }
  });

  it("forwards the browser's own ClientInit in browser mode, and shares as it asked", () => {
    const x = new Initialisation('browser');
    expect(x.browserClientInitSeen).toBe(false);
    const r = x.fromBrowser(Buffer.from([0]));
    expect(r.forward).toEqual(Buffer.from([0]));
    expect(x.browserClientInitSeen).toBe(true);
    expect(x.fromBrowser(Buffer.from([5]))).toEqual({});
    x.fromEndpoint(serverInit, Buffer.alloc(0), init);
    const t = x.take();
    expect(t.shared).toBe(false);
    expect(t.browserTrailing).toEqual(Buffer.from([5]));
    expect(t.serverInit).toBe(serverInit);
  });

  it('sends vncgate its own ClientInit in shared/exclusive mode: nothing is forwarded', () => {
    const x = new Initialisation('exclusive');
    expect(x.fromBrowser(Buffer.from([1])).forward).toBeUndefined();
    x.fromEndpoint(serverInit, Buffer.alloc(0), init);
    expect(x.take().shared).toBe(false);
  });

  it('bounds what a browser may send before ServerInit (SESSION_ERR_BROWSER_PROTOCOL)', () => {
    const x = new Initialisation('shared');
    expect(x.fromBrowser(Buffer.alloc(LIMITS.maxHandshakeBufferBytes + 1)).error).toBeUndefined();
    expect(x.fromBrowser(Buffer.alloc(1)).error?.code).toBe('SESSION_ERR_BROWSER_PROTOCOL');
  });
});
