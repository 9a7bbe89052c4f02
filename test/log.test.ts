import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogger, logSafeAddress, logSafeNode, logSafeOrigin, logSafePath, scrubSecrets } from '../src/log.js';
import { generateToken } from '../src/tokens/index.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

const TOKEN = 'Ee0kUbAjhOEk5IVgeC9VeNQePhChEyEFXqvTZ7XQ5pw';
const UUID = '1be26c0b-03f2-4d2e-ae87-c02d7f33c123';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJlLW9mLWEtand0LWZvci10ZXN0cw';

describe('log scrubbing', () => {
  it('blanks token values in text, whatever surrounds them', () => {
    expect(scrubSecrets(`in "/websockify?token=${TOKEN}" (GET)`)).toBe('in "/websockify?token=[redacted]" (GET)');
    expect(scrubSecrets(`/vnc.html?path=websockify&TOKEN=${TOKEN}&x=1`)).toBe('/vnc.html?path=websockify&TOKEN=[redacted]&x=1');
    expect(scrubSecrets('nothing to see')).toBe('nothing to see');
    // Reconnect grants (proxy/reconnect.ts), whatever their shape, as the token.
    expect(scrubSecrets(`GET /websockify?grant=${TOKEN}`)).toBe('GET /websockify?grant=[redacted]');
    expect(scrubSecrets('GET /websockify?grant=not-a-grant-at-all&x=1')).toBe('GET /websockify?grant=[redacted]&x=1');
  });

  it('issue 15: blanks a token wherever it stands, not only after token=', () => {
    expect(scrubSecrets(`/${TOKEN}`)).toBe('/[redacted]');
    expect(scrubSecrets(`?node=${TOKEN}&x=1`)).toBe('?node=[redacted]&x=1');
    // Glued to neighbours (a percent-escape, more characters): the whole run goes.
    expect(scrubSecrets(`path=websockify%3Fnode%3D${TOKEN}`)).toBe('path=websockify%3Fnode%[redacted]');
    expect(scrubSecrets(`/${TOKEN}abc/x`)).toBe('/[redacted]/x');
    // Percent-encoded token= (inside noVNC's path parameter), Nova's UUID tokens, cookies.
    expect(scrubSecrets(`path=websockify%3Ftoken%3D${UUID}`)).toBe('path=websockify%3Ftoken%3D[redacted]');
    expect(scrubSecrets(`a=1; token=${UUID}; b=2`)).toBe('a=1; token=[redacted]; b=2');
    expect(scrubSecrets(`GET /os-console-auth-tokens/${UUID}?x`)).toBe('GET /os-console-auth-tokens/[redacted]?x');
    expect(scrubSecrets(`Bearer ${JWT}`)).toBe('Bearer [redacted]');
    // A thousand random tokens: every one is caught.
    for (let i = 0; i < 1000; i++) {
      const t = generateToken();
      expect(scrubSecrets(`x ${t} y`)).toBe('x [redacted] y');
    }
  });

  it('finds every long mixed-case run, as a plain regex would (random lines, any lengths)', () => {
    const reference = (t: string): string => t.replace(/[A-Za-z0-9_-]{43,}/g, (m) => (/[A-Z]/.test(m) && /[a-z]/.test(m) ? '[redacted]' : m));
    // Runs of base64url characters of any length between separators (none of which start a key).
    const run = fc.stringMatching(/^[A-Za-z0-9_-]{0,100}$/);
    // (No '.' or '=': a JWT or token= match is another rule's business.)
    const sep = fc.constantFrom(' ', '"', ':', ',', '/', '%', '{', '}', 'é');
    const line = fc.array(fc.tuple(run, sep), { maxLength: 12 }).map((parts) => parts.map(([r, s]) => r + s).join(''));
    fc.assert(
      fc.property(line, (l) => {
        expect(scrubSecrets(l)).toBe(reference(l));
      }),
      { numRuns: 2_000 },
    );
  });

  it('keeps the ids operators need: UUIDs, hex digests, one-case names, tokenId', () => {
    const keep = [
      `node ${UUID}`,
      `instance ${UUID} (10.0.0.5:5900)`,
      'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      'node rack12-chassis03-blade07-compute-node-prod-east-1',
      '"tokenId":"f86e4abcf7f7"',
    ];
    for (const s of keep) expect(scrubSecrets(s)).toBe(s);
  });

  it('keeps tokens out of every field: messages, bindings, nested values, serialized errors; lines stay JSON', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'trace', destination: stream }).child({ reqId: 'r1', node: TOKEN });
    const err = Object.assign(new Error(`Reply was already sent, did you forget to "return reply" in "/websockify?token=${TOKEN}" (GET)?`), {
      rawPacket: Buffer.from(`GET /?token=${TOKEN} HTTP/1.1\r\n`),
    });
    log.warn({ err }, err.message);
    log.info(`upgrade for /?token=${TOKEN}`);
    log.debug({ headers: { referer: `https://a.test/${TOKEN}`, 'x-forwarded-for': TOKEN }, deep: { list: [{ v: `x"y\\token=${TOKEN}` }] } }, 'fields');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain(TOKEN);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    const first = JSON.parse(lines[0]!) as { msg: string; node: string; err: { message: string; stack: string; type: string; rawPacket: string } };
    expect(first.msg).toContain('token=[redacted]');
    expect(first.node).toBe('[redacted]');
    expect(first.err.message).toContain('token=[redacted]');
    expect(first.err.stack).toContain('token=[redacted]');
    expect(first.err.rawPacket).toMatch(/^\[\d+ bytes\]$/);
    expect(first.err.type).toBe('Error');
    const third = JSON.parse(lines[2]!) as { deep: { list: { v: string }[] } };
    expect(third.deep.list[0]!.v).toBe('x"y\\token=[redacted]');
  });

  it('costs little per line (figure printed, not asserted)', () => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const log = createLogger({ level: 'info', destination: sink }).child({ sessionId: 'a1b2c3d4e5f6', remote: '203.0.113.7', tokenId: 'f86e4abcf7f7' });
    const line = { durationMs: 1234, bytesToBrowser: 123456, bytesToBackend: 789, closedBy: 'browser', code: null, target: '10.0.0.5:5901' };
    const n = 50_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) log.info(line, 'session ended');
    const withHook = (performance.now() - t0) / n;
    const s = JSON.stringify({ level: 30, time: Date.now(), service: 'vncgate', sessionId: 'a1b2c3d4e5f6', ...line, msg: 'session ended' });
    const t1 = performance.now();
    for (let i = 0; i < n; i++) scrubSecrets(s);
    const scrubOnly = (performance.now() - t1) / n;
    console.log(`log line with scrubbing: ${(withHook * 1000).toFixed(2)} µs; of which scrubSecrets on a ${s.length}-char clean line: ${(scrubOnly * 1000).toFixed(2)} µs`);
  });
});

describe('known-safe shapes for request values', () => {
  it('node: an Ironic name or UUID, else [invalid]', () => {
    expect(logSafeNode(UUID)).toBe(UUID);
    expect(logSafeNode('compute-1.rack_2~a')).toBe('compute-1.rack_2~a');
    for (const bad of [TOKEN, 'a b', 'x'.repeat(256), '', 'n/../x', 'é']) expect(logSafeNode(bad)).toBe('[invalid]');
  });

  it('origin: scheme://host[:port] only; a token-long host is redacted', () => {
    expect(logSafeOrigin(`https://horizon.test:8443/path?token=${TOKEN}#x`)).toBe('https://horizon.test:8443');
    expect(logSafeOrigin('null')).toBe('[invalid]');
    expect(logSafeOrigin('file:///x')).toBe('null');
    expect(logSafeOrigin(`https://${TOKEN}.evil.test`)).toBe('[redacted]');
    expect(logSafeOrigin('not a url')).toBe('[invalid]');
  });

  it('address: an IP, else [invalid]', () => {
    expect(logSafeAddress('203.0.113.7')).toBe('203.0.113.7');
    expect(logSafeAddress('::1')).toBe('::1');
    expect(logSafeAddress(TOKEN)).toBe('[invalid]');
    expect(logSafeAddress(undefined)).toBeUndefined();
  });

  it('path: known paths as themselves, any other as its route pattern', () => {
    expect(logSafePath(`/websockify?token=${TOKEN}`, '/*')).toBe('/websockify');
    expect(logSafePath(`/${TOKEN}?x=1`, '/*')).toBe('/*');
    expect(logSafePath('/assets/console-1.js', '/assets/:name')).toBe('/assets/:name');
    expect(logSafePath(`/${TOKEN}`, undefined)).toBe('(no route)');
  });
});
