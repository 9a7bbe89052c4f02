import { isIPv4, isIPv6 } from 'node:net';
import { ByteQueue } from './rfb/index.js';
import { formatIpAddress } from './target-policy.js';

/**
 * The PROXY protocol header a load balancer (HAProxy `send-proxy` / `send-proxy-v2`, AWS NLB,
 * …) puts in front of a TCP connection to say whose it is: a pure, sans-I/O parser. Fed bytes
 * (`receive(chunk)`), it answers `incomplete`, `done` (with the bytes after the header, which
 * belong to TLS or HTTP and must be handed on unchanged) or `failed`. Peer input never makes it
 * throw, and it never buffers more than PROXY_MAX_HEADER_BYTES.
 *
 * Spec: haproxy's doc/proxy-protocol.txt ("The PROXY protocol, Versions 1 & 2"), cited as §.
 */

/** §2.1: a v1 line is at most 107 bytes, CRLF included. */
export const PROXY_V1_MAX_BYTES = 107;
/** §2.2: the v2 signature, "\r\n\r\n\0\r\nQUIT\n". */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** §2.2: signature, version/command, family/transport, 16-bit length. */
const V2_FIXED_BYTES = 16;
/**
 * Our bound on the v2 length field (addresses plus TLVs; the field allows 65535). Addresses take
 * at most 216 bytes (§2.2, AF_UNIX); HAProxy's TLVs (ALPN, authority, unique id, SSL details) fit
 * well below this.
 */
export const PROXY_V2_MAX_PAYLOAD_BYTES = 4096;
/** The most a parser ever holds. */
export const PROXY_MAX_HEADER_BYTES = V2_FIXED_BYTES + PROXY_V2_MAX_PAYLOAD_BYTES;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

/** §2.2 byte 13, low nibble. */
const V2_COMMAND = { local: 0x0, proxy: 0x1 } as const;
/** §2.2 byte 14, high nibble: address family. */
const V2_FAMILY = { unspec: 0x0, inet: 0x1, inet6: 0x2, unix: 0x3 } as const;
/** §2.2 byte 14, low nibble: transport; 0 UNSPEC, 1 STREAM, 2 DGRAM. */
const V2_MAX_TRANSPORT = 0x2;
/** §2.2: bytes of the address block per family (source, destination, then ports for INET/INET6). */
const V2_ADDRESS_BYTES = { [V2_FAMILY.inet]: 12, [V2_FAMILY.inet6]: 36, [V2_FAMILY.unix]: 216 } as const;

export type ProxyPeer = { readonly address: string; readonly port: number; readonly family: 4 | 6 };

export type ProxyHeader = {
  readonly version: 1 | 2;
  /**
   * The client the proxy speaks for; null when the header names none — v2 LOCAL (the proxy's
   * own health checks), v1 UNKNOWN, v2 UNSPEC or UNIX addresses: the connection's own peer stands
   * (§2.1, §2.2 say to use the real connection endpoints then).
   */
  readonly source: ProxyPeer | null;
  readonly destination: ProxyPeer | null;
};

export type ProxyParse =
  | { readonly state: 'incomplete' }
  | { readonly state: 'done'; readonly header: ProxyHeader; readonly rest: Buffer }
  | { readonly state: 'failed'; readonly reason: string };

const INCOMPLETE: ProxyParse = { state: 'incomplete' };

/** §2.1: "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN[ anything]", before the CRLF. */
const V1_LINE = /^PROXY (?:UNKNOWN(?: [\x20-\x7e]*)?|(TCP4|TCP6) ([0-9A-Fa-f.:]+) ([0-9A-Fa-f.:]+) (\d{1,5}) (\d{1,5}))$/;

/** One connection's PROXY header, v1 or v2 (§2: a receiver accepts either). */
export class ProxyHeaderParser {
  readonly #queue = new ByteQueue();
  #finished = false;

  receive(chunk: Uint8Array): ProxyParse {
    if (this.#finished) throw new Error('ProxyHeaderParser: receive() after the header was done or failed');
    // Never hold more than a header can be: whatever is past that is not ours to buffer.
    const room = PROXY_MAX_HEADER_BYTES - this.#queue.length;
    const tail = chunk.length > room ? Buffer.from(chunk.subarray(room)) : null;
    this.#queue.push(tail === null ? chunk : chunk.subarray(0, room));
    const result = this.#parse();
    if (result.state === 'incomplete') return result;
    this.#finished = true;
    if (result.state === 'done' && tail !== null) return { ...result, rest: Buffer.concat([result.rest, tail]) };
    return result;
  }

  #parse(): ProxyParse {
    const q = this.#queue;
    // The first byte tells them apart ('\r' or 'P'); each is refused at its first wrong byte.
    if (startsLike(q, PROXY_V2_SIGNATURE)) return q.has(PROXY_V2_SIGNATURE.length) ? this.#parseV2() : INCOMPLETE;
    if (startsLike(q, V1_PREFIX)) return q.has(V1_PREFIX.length) ? this.#parseV1() : INCOMPLETE;
    return failed('not a PROXY protocol header');
  }

  #parseV1(): ProxyParse {
    const q = this.#queue;
    const limit = Math.min(q.length, PROXY_V1_MAX_BYTES);
    for (let i = 1; i < limit; i++) {
      if (q.peekU8(i) !== 0x0a) continue;
      if (q.peekU8(i - 1) !== 0x0d) return failed('v1 header: a line feed without a carriage return');
      const line = q.bytes(i - 1).toString('latin1');
      q.skip(2);
      const header = parseV1Line(line);
      return typeof header === 'string' ? failed(header) : { state: 'done', header, rest: q.takeAll() };
    }
    return q.length >= PROXY_V1_MAX_BYTES ? failed(`v1 header: no CRLF within ${PROXY_V1_MAX_BYTES} bytes`) : INCOMPLETE;
  }

  #parseV2(): ProxyParse {
    const q = this.#queue;
    if (!q.has(V2_FIXED_BYTES)) return INCOMPLETE;
    const versionCommand = q.peekU8(12);
    const familyTransport = q.peekU8(13);
    const length = (q.peekU8(14) << 8) | q.peekU8(15);
    if (versionCommand >> 4 !== 2) return failed(`v2 header: version ${versionCommand >> 4}`);
    const command = versionCommand & 0x0f;
    if (command !== V2_COMMAND.local && command !== V2_COMMAND.proxy) return failed(`v2 header: unknown command ${command}`);
    const family = familyTransport >> 4;
    if (family > V2_FAMILY.unix || (familyTransport & 0x0f) > V2_MAX_TRANSPORT) return failed(`v2 header: unknown family/transport 0x${familyTransport.toString(16)}`);
    if (length > PROXY_V2_MAX_PAYLOAD_BYTES) return failed(`v2 header: ${length} bytes of addresses and TLVs (at most ${PROXY_V2_MAX_PAYLOAD_BYTES})`);
    if (!q.has(V2_FIXED_BYTES + length)) return INCOMPLETE;
    q.skip(V2_FIXED_BYTES);
    const needed = family === V2_FAMILY.unspec ? 0 : V2_ADDRESS_BYTES[family as 1 | 2 | 3];
    // §2.2: LOCAL ignores the address block; for PROXY it must hold the family's addresses.
    if (command === V2_COMMAND.proxy && length < needed) return failed(`v2 header: ${length} bytes cannot hold the addresses (${needed})`);
    let source: ProxyPeer | null = null;
    let destination: ProxyPeer | null = null;
    let used = 0;
    if (command === V2_COMMAND.proxy && (family === V2_FAMILY.inet || family === V2_FAMILY.inet6)) {
      const size = family === V2_FAMILY.inet ? 4 : 16;
      const src = q.bytes(size);
      const dst = q.bytes(size);
      const sport = q.u16();
      const dport = q.u16();
      used = needed;
      const fam = family === V2_FAMILY.inet ? 4 : 6;
      source = { address: ipText(src, fam), port: sport, family: fam };
      destination = { address: ipText(dst, fam), port: dport, family: fam };
    }
    // The rest of the block: UNIX addresses, and TLVs (§2.2.7), which vncgate does not use.
    q.skip(length - used);
    return { state: 'done', header: { version: 2, source, destination }, rest: q.takeAll() };
  }
}

/** The queued bytes so far agree with `prefix` (as far as either goes). */
function startsLike(q: ByteQueue, prefix: Buffer): boolean {
  for (let i = 0; i < prefix.length && i < q.length; i++) if (q.peekU8(i) !== prefix[i]) return false;
  return true;
}

function failed(reason: string): ProxyParse {
  return { state: 'failed', reason };
}

function ipText(bytes: Buffer, family: 4 | 6): string {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return formatIpAddress({ family, value });
}

function parseV1Line(line: string): ProxyHeader | string {
  const m = V1_LINE.exec(line);
  if (!m) return 'v1 header: malformed line';
  const [, proto, src, dst, sport, dport] = m;
  if (proto === undefined) return { version: 1, source: null, destination: null };
  const family = proto === 'TCP4' ? 4 : 6;
  const valid = family === 4 ? isIPv4 : isIPv6;
  if (!valid(src!) || !valid(dst!)) return `v1 header: addresses are not ${proto} addresses`;
  const sp = Number(sport);
  const dp = Number(dport);
  if (sp > 65535 || dp > 65535) return 'v1 header: port out of range';
  return { version: 1, source: { address: src!, port: sp, family }, destination: { address: dst!, port: dp, family } };
}
