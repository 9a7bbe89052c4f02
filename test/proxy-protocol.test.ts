import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROXY_MAX_HEADER_BYTES, PROXY_V1_MAX_BYTES, PROXY_V2_MAX_PAYLOAD_BYTES, ProxyHeaderParser, type ProxyParse } from '../src/proxy-protocol.js';

/** Annotated hex → bytes (whitespace and `#…` comments to the end of a line ignored). */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
}

const SIG = '0d0a0d0a000d0a515549540a'; // §2.2 signature "\r\n\r\n\0\r\nQUIT\n"

/** HAProxy send-proxy-v2 for a client 127.0.0.5:40000 → 127.0.0.1:6081, with a PP2_TYPE_ALPN TLV. */
const V2_TCP4 = hex(`
  ${SIG}
  21            # version 2, command PROXY
  11            # AF_INET, STREAM
  0011          # 17 bytes follow: 12 of addresses + a 5-byte TLV
  7f000005      # source 127.0.0.5
  7f000001      # destination 127.0.0.1
  9c40          # source port 40000
  17c1          # destination port 6081
  01 0002 6832  # TLV PP2_TYPE_ALPN (0x01), length 2, "h2" — skipped
`);
const V2_TCP6 = hex(`
  ${SIG} 21 21 0024        # PROXY, AF_INET6 STREAM, 36 bytes
  20010db8000000000000000000000001  # source 2001:db8::1
  00000000000000000000000000000001  # destination ::1
  1f90 0050                # ports 8080 → 80
`);
const V2_LOCAL = hex(`${SIG} 20 00 0000`); // LOCAL (a health check), AF_UNSPEC, no addresses
const V2_LOCAL_WITH_ADDRESSES = hex(`${SIG} 20 11 000c 0a000001 0a000002 0001 0002`); // LOCAL ignores them
const V2_UNSPEC = hex(`${SIG} 21 00 0000`); // PROXY but AF_UNSPEC: use the connection's own peer
const V2_UNIX = Buffer.concat([hex(`${SIG} 21 31 00d8`), Buffer.alloc(216)]); // AF_UNIX, 2×108 bytes of paths

const V1_TCP4 = Buffer.from('PROXY TCP4 127.0.0.5 127.0.0.1 40000 6081\r\n', 'latin1');
const V1_TCP6 = Buffer.from('PROXY TCP6 2001:db8::1 ::1 8080 80\r\n', 'latin1');
const FULL_V6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
/** §2.1's worst case: "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n". */
const V1_UNKNOWN = Buffer.from(`PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535\r\n`, 'latin1');

/** What follows the header: a TLS ClientHello's first bytes, which must come out unchanged. */
const TRAILING = hex('16 0301 00f1 01 0000ed 0303');

function feed(chunks: readonly Uint8Array[]): ProxyParse {
  const p = new ProxyHeaderParser();
  let r: ProxyParse = { state: 'incomplete' };
  let i = 0;
  for (; i < chunks.length; i++) {
    r = p.receive(chunks[i]!);
    if (r.state !== 'incomplete') break;
  }
  // Whatever was not fed after the verdict is the caller's, and follows `rest`.
  if (r.state === 'done') return { ...r, rest: Buffer.concat([r.rest, ...chunks.slice(i + 1)]) };
  return r;
}

/** The same bytes whole, one at a time, and split in two at every offset. */
function everyChunking(bytes: Buffer): Buffer[][] {
  const ways: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let at = 1; at < bytes.length; at++) ways.push([bytes.subarray(0, at), bytes.subarray(at)]);
  return ways;
}

const GOLDEN = [
  { name: 'v2 TCP4 with a TLV', bytes: V2_TCP4, header: { version: 2, source: { address: '127.0.0.5', port: 40000, family: 4 }, destination: { address: '127.0.0.1', port: 6081, family: 4 } } },
  { name: 'v2 TCP6', bytes: V2_TCP6, header: { version: 2, source: { address: '2001:db8::1', port: 8080, family: 6 }, destination: { address: '::1', port: 80, family: 6 } } },
  { name: 'v2 LOCAL', bytes: V2_LOCAL, header: { version: 2, source: null, destination: null } },
  { name: 'v2 LOCAL with addresses', bytes: V2_LOCAL_WITH_ADDRESSES, header: { version: 2, source: null, destination: null } },
  { name: 'v2 PROXY AF_UNSPEC', bytes: V2_UNSPEC, header: { version: 2, source: null, destination: null } },
  { name: 'v2 PROXY AF_UNIX', bytes: V2_UNIX, header: { version: 2, source: null, destination: null } },
  { name: 'v1 TCP4', bytes: V1_TCP4, header: { version: 1, source: { address: '127.0.0.5', port: 40000, family: 4 }, destination: { address: '127.0.0.1', port: 6081, family: 4 } } },
  { name: 'v1 TCP6', bytes: V1_TCP6, header: { version: 1, source: { address: '2001:db8::1', port: 8080, family: 6 }, destination: { address: '::1', port: 80, family: 6 } } },
  { name: 'v1 UNKNOWN (longest form, 107 bytes)', bytes: V1_UNKNOWN, header: { version: 1, source: null, destination: null } },
] as const;

describe('PROXY protocol header parser (issue 17)', () => {
  it('the longest v1 line is exactly the 107-byte bound', () => {
    expect(V1_UNKNOWN.length).toBe(PROXY_V1_MAX_BYTES);
  });

  for (const g of GOLDEN) {
    it(`${g.name}: parsed whole, byte by byte and split at every offset; the bytes after it come out unchanged`, () => {
      for (const chunks of everyChunking(Buffer.concat([g.bytes, TRAILING]))) {
        const r = feed(chunks);
        expect(r.state).toBe('done');
        if (r.state !== 'done') continue;
        expect(r.header).toEqual(g.header);
        expect(r.rest.equals(TRAILING)).toBe(true);
      }
      // Nothing after the header: rest is empty, and only the whole header completes it.
      for (const chunks of everyChunking(g.bytes)) {
        const r = feed(chunks);
        expect(r.state).toBe('done');
        if (r.state === 'done') expect(r.rest.length).toBe(0);
      }
      expect(feed([g.bytes.subarray(0, g.bytes.length - 1)]).state).toBe('incomplete');
    });
  }

  const BAD: { name: string; bytes: Buffer }[] = [
    { name: 'a TLS ClientHello (no header at all)', bytes: TRAILING },
    { name: 'a plain HTTP request', bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n') },
    { name: 'lower-case proxy', bytes: Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n') },
    { name: 'v1 without CRLF in 107 bytes', bytes: Buffer.from(`PROXY UNKNOWN ${'x'.repeat(120)}`) },
    { name: 'v1 with a bare LF', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n') },
    { name: 'v1 TCP4 with IPv6 addresses', bytes: Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n') },
    { name: 'v1 TCP6 with IPv4 addresses', bytes: Buffer.from('PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n') },
    { name: 'v1 port out of range', bytes: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n') },
    { name: 'v1 bad address', bytes: Buffer.from('PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n') },
    { name: 'v1 two spaces', bytes: Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n') },
    { name: 'v1 UDP4', bytes: Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n') },
    { name: 'v2 version 1', bytes: hex(`${SIG} 11 11 000c 7f000005 7f000001 0001 0002`) },
    { name: 'v2 command 2', bytes: hex(`${SIG} 22 11 000c 7f000005 7f000001 0001 0002`) },
    { name: 'v2 family 4', bytes: hex(`${SIG} 21 41 000c 7f000005 7f000001 0001 0002`) },
    { name: 'v2 transport 3', bytes: hex(`${SIG} 21 13 000c 7f000005 7f000001 0001 0002`) },
    { name: 'v2 INET with too few address bytes', bytes: hex(`${SIG} 21 11 000b 7f000005 7f000001 0001 00`) },
    { name: 'v2 length past the bound', bytes: hex(`${SIG} 21 11 ${(PROXY_V2_MAX_PAYLOAD_BYTES + 1).toString(16).padStart(4, '0')}`) },
    { name: 'a broken v2 signature', bytes: hex('0d0a0d0a000d0a5155495420 21 11 000c') },
  ];
  for (const b of BAD) {
    it(`refuses ${b.name}, whole and byte by byte`, () => {
      expect(feed([b.bytes]).state).toBe('failed');
      expect(feed([...b.bytes].map((x) => Buffer.from([x]))).state).toBe('failed');
    });
  }

  it('refuses non-PROXY bytes at the first byte that cannot start a header', () => {
    expect(new ProxyHeaderParser().receive(Buffer.from([0x16])).state).toBe('failed');
    expect(new ProxyHeaderParser().receive(Buffer.from('PROXX')).state).toBe('failed');
    expect(new ProxyHeaderParser().receive(Buffer.from('PROX')).state).toBe('incomplete');
  });

  it('a v2 header at the length bound is accepted, TLVs skipped', () => {
    const len = PROXY_V2_MAX_PAYLOAD_BYTES;
    const bytes = Buffer.concat([hex(`${SIG} 21 11 ${len.toString(16).padStart(4, '0')} 7f000005 7f000001 0001 0002`), Buffer.alloc(len - 12, 0xee), TRAILING]);
    const r = feed([bytes]);
    expect(r.state).toBe('done');
    if (r.state === 'done') expect(r.rest.equals(TRAILING)).toBe(true);
  });

  it('receive() after the verdict is our own bug: it throws', () => {
    const p = new ProxyHeaderParser();
    expect(p.receive(V1_TCP4).state).toBe('done');
    expect(() => p.receive(TRAILING)).toThrow();
  });

  it('random bytes in any chunking never throw, and a verdict comes by PROXY_MAX_HEADER_BYTES', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 600 }), { maxLength: 20 }), (chunks) => {
        const p = new ProxyHeaderParser();
        let fed = 0;
        for (const c of chunks) {
          const r = p.receive(c);
          fed += c.length;
          if (r.state !== 'incomplete') return;
          expect(fed).toBeLessThan(PROXY_MAX_HEADER_BYTES);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('valid headers with random bytes changed, in random chunks, never throw; the rest is always what followed the header', () => {
    const golden = GOLDEN.map((g) => g.bytes);
    fc.assert(
      fc.property(
        fc.constantFrom(...golden),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        (header, edits, cuts) => {
          const bytes = Buffer.concat([header, TRAILING]);
          for (const [at, v] of edits) bytes[at % header.length] = v;
          const chunks: Buffer[] = [];
          let at = 0;
          for (let i = 0; at < bytes.length; i++) {
            const n = cuts[i % cuts.length]!;
            chunks.push(bytes.subarray(at, at + n));
            at += n;
          }
          const r = feed(chunks);
          if (r.state === 'done' && edits.length === 0) expect(r.rest.equals(TRAILING)).toBe(true);
          if (r.state === 'done') expect(r.rest.length).toBeLessThanOrEqual(bytes.length);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('a flood far past the bound in one chunk is refused without being buffered', () => {
    const p = new ProxyHeaderParser();
    const r = p.receive(Buffer.alloc(1024 * 1024, 0x50)); // "PPPP…": fails at the second byte
    expect(r.state).toBe('failed');
    const q = new ProxyHeaderParser();
    const big = Buffer.concat([hex(`${SIG} 21 11 ${PROXY_V2_MAX_PAYLOAD_BYTES.toString(16)}`), Buffer.alloc(1024 * 1024)]);
    const done = q.receive(big);
    // The header is complete within the first PROXY_MAX_HEADER_BYTES: its addresses are zeroes.
    expect(done.state).toBe('done');
    if (done.state === 'done') expect(done.rest.length).toBe(big.length - PROXY_MAX_HEADER_BYTES);
  });
});
