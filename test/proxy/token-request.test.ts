import { describe, expect, it } from 'vitest';
import { isVncgateError } from '../../src/errors.js';
import { parseTokenRequest, type TokenRequestContext } from '../../src/proxy/token-request.js';

const ctx = (over: Partial<TokenRequestContext> = {}): TokenRequestContext => ({
  defaultTtlSeconds: 300,
  ironic: false,
  hasProfile: (name) => name === 'idrac',
  ...over,
});

/** The `details.field` of the HTTP_ERR_BAD_REQUEST the body is refused with. */
function refusal(body: unknown, c: TokenRequestContext = ctx()): { code: string; field: unknown; message: string } {
  try {
    parseTokenRequest(body, c);
  } catch (err) {
    if (!isVncgateError(err)) throw err;
    return { code: err.code, field: err.details?.field, message: err.message };
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe('parseTokenRequest', () => {
  it.each([
    ['host:port', { target: 'bmc-7.example.org:5900' }, { kind: 'static', host: 'bmc-7.example.org', port: 5900 }],
    ['[v6]:port', { target: '[fd00::7]:5901' }, { kind: 'static', host: 'fd00::7', port: 5901 }],
    ['{host, port}', { target: { host: '10.0.0.7', port: 443 } }, { kind: 'static', host: '10.0.0.7', port: 443 }],
    ['with profile', { target: '10.0.0.7:443', profile: 'idrac' }, { kind: 'static', host: '10.0.0.7', port: 443, profile: 'idrac' }],
  ])('accepts %s', (_name, body, target) => {
    expect(parseTokenRequest(body, ctx())).toEqual({ target, ttlSeconds: 300, count: undefined });
  });

  it('accepts a node target when Ironic is configured, and ttlSeconds and count', () => {
    expect(parseTokenRequest({ node: 'rack1-node7', ttlSeconds: 60, count: 3 }, ctx({ ironic: true }))).toEqual({
      target: { kind: 'node', node: 'rack1-node7' },
      ttlSeconds: 60,
      count: 3,
    });
  });

  it('issue 15: an object target cannot smuggle in another kind', () => {
    // Before: {kind: 'static', ...target} let the body's own kind and node win.
    const r = refusal({ target: { host: '10.0.0.7', port: 5900, kind: 'node', node: 'x' } });
    expect(r).toMatchObject({ code: 'HTTP_ERR_BAD_REQUEST', field: 'kind' });
    expect(r.message).toContain('"kind"');
    expect(refusal({ target: { host: '10.0.0.7', port: 5900, profile: 'idrac' } })).toMatchObject({ field: 'profile' });
  });

  it('issue 15: unknown properties are refused, naming the first', () => {
    for (const [body, field] of [
      [{ target: '10.0.0.7:5900', kind: 'node' }, 'kind'],
      [{ target: '10.0.0.7:5900', host: '169.254.169.254' }, 'host'],
      [{ target: '10.0.0.7:5900', ttl: 60 }, 'ttl'],
      [{ target: '10.0.0.7:5900', ['x'.repeat(10_000)]: 1 }, 'x'.repeat(64)],
    ] as const) {
      const r = refusal(body);
      expect(r).toMatchObject({ code: 'HTTP_ERR_BAD_REQUEST', field });
      // The key is echoed, but bounded.
      expect(r.message.length).toBeLessThan(300);
    }
  });

  it.each<[string, unknown, string | undefined]>([
    ['not an object', 'target=1.2.3.4:5', undefined],
    ['an array', [{ target: '1.2.3.4:5' }], undefined],
    ['null', null, undefined],
    ['nothing', {}, undefined],
    ['a node without Ironic', { node: 'x' }, 'node'],
    ['target and node', { target: '10.0.0.7:5900', node: 'x' }, 'node'],
    ['node with a profile', { node: 'x', profile: 'idrac' }, 'profile'],
    ['a target without port', { target: '10.0.0.7' }, 'target'],
    ['unbracketed IPv6', { target: 'fd00::7:5900' }, 'target'],
    ['port 0', { target: '10.0.0.7:0' }, 'target'],
    ['port 65536', { target: '10.0.0.7:65536' }, 'target'],
    ['a host with a path', { target: 'evil/x:5900' }, 'target'],
    ['a target number', { target: 5900 }, 'target'],
    ['a target array', { target: ['10.0.0.7', 5900] }, 'target'],
    ['a port string in the object', { target: { host: '10.0.0.7', port: '5900' } }, 'target'],
    ['an unknown profile', { target: '10.0.0.7:5900', profile: 'nope' }, 'profile'],
    ['a profile number', { target: '10.0.0.7:5900', profile: 7 }, 'profile'],
    ['a fractional ttl', { target: '10.0.0.7:5900', ttlSeconds: 1.5 }, 'ttlSeconds'],
    ['a zero ttl', { target: '10.0.0.7:5900', ttlSeconds: 0 }, 'ttlSeconds'],
    ['a string ttl', { target: '10.0.0.7:5900', ttlSeconds: '60' }, 'ttlSeconds'],
    ['count 0', { target: '10.0.0.7:5900', count: 0 }, 'count'],
    ['a fractional count', { target: '10.0.0.7:5900', count: 2.5 }, 'count'],
    ['a string count', { target: '10.0.0.7:5900', count: '3' }, 'count'],
  ])('refuses %s', (_name, body, field) => {
    expect(refusal(body, ctx())).toMatchObject({ code: 'HTTP_ERR_BAD_REQUEST', field });
  });

  it('refuses objects that are not plain JSON objects', () => {
    expect(refusal(Object.assign(Object.create({ target: '10.0.0.7:5900' }) as object, {}))).toMatchObject({ code: 'HTTP_ERR_BAD_REQUEST' });
  });
});
