import type { ErrorCode } from '../../../src/errors.js';
import type { Rng } from './rng.js';

/** What the engine must have done once the first `at` bytes of a transcript have arrived. */
export type Decision = { outcome: 'established' | 'failed'; code: ErrorCode | null; at: number };

/** One generated peer transcript, with what an unmutated one must lead to. */
export type Transcript = {
  bytes: Buffer;
  /** Client role: where the peer's plaintext ends and the (already decrypted) TLS stream begins. */
  tlsAt: number | null;
  /** Null once mutated: then only the invariants hold, not the oracle. */
  decision: Decision | null;
  /** The ServerInit that follows an established client-role handshake, if the script wrote one. */
  serverInit: { at: number; nameLength: number } | null;
};

/** Appends wire values (into one growing buffer: millions of inputs) and records where the engine must decide. */
export class Script {
  #buf = Buffer.allocUnsafe(256);
  length = 0;
  tlsAt: number | null = null;
  decision: Decision | null = null;
  serverInit: { at: number; nameLength: number } | null = null;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(2 * this.#buf.length, this.length + n));
    this.#buf.copy(next, 0, 0, this.length);
    this.#buf = next;
  }

  push(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.length++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    this.#buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  /** The outcome is fixed once the bytes written so far have arrived (the first call wins). */
  decide(outcome: Decision['outcome'], code: ErrorCode | null = null): void {
    this.decision ??= { outcome, code, at: this.length };
  }

  finish(): Transcript {
    return { bytes: this.#buf.subarray(0, this.length), tlsAt: this.tlsAt, decision: this.decision, serverInit: this.serverInit };
  }
}

const ODD_VERSIONS = ['003.004', '003.005', '003.006', '003.889', '003.999', '004.000', '004.001', '005.000'];
const UNSUPPORTED_VERSIONS = ['000.000', '002.000', '003.000', '003.002', '006.000', '999.999'];
const MALFORMED_VERSIONS = ['RFB 003.008 ', 'RFB 03.008\n\n', 'rfb 003.008\n', 'RFB 003.00a\n', 'RFB 003.008\r', 'RFC 003.008\n', '\nRFB 003.008', 'RFB -03.008\n'];

/** A ProtocolVersion: mostly the three real ones, then odd-but-valid, unsupported and malformed. */
export function versionString(rng: Rng): { wire: Buffer; kind: 'ok' | 'unsupported' | 'malformed' } {
  const r = rng.int(100);
  const v = (s: string): Buffer => Buffer.from(`RFB ${s}\n`, 'latin1');
  if (r < 40) return { wire: v('003.008'), kind: 'ok' };
  if (r < 55) return { wire: v('003.007'), kind: 'ok' };
  if (r < 70) return { wire: v('003.003'), kind: 'ok' };
  if (r < 84) return { wire: v(rng.pick(ODD_VERSIONS)), kind: 'ok' };
  if (r < 90) return { wire: v(rng.pick(UNSUPPORTED_VERSIONS)), kind: 'unsupported' };
  if (r < 96) return { wire: Buffer.from(rng.pick(MALFORMED_VERSIONS), 'latin1'), kind: 'malformed' };
  return { wire: rng.bytes(12), kind: 'malformed' };
}

/** Peer-declared lengths: mostly honest, sometimes at the limit, one past it, or absurd. */
export function declaredLength(rng: Rng, limit: number): number {
  const r = rng.int(100);
  if (r < 70) return rng.int(Math.min(limit, 64) + 1);
  if (r < 80) return rng.int(limit + 1);
  if (r < 84) return limit;
  if (r < 88) return limit + 1;
  return rng.pick([0xffff_ffff, 0x8000_0000, 0x7fff_ffff, 0x1_0000, 0x100_0000, rng.u32()]);
}

/** Reason or name text: printable, UTF-8, control bytes, or anything. */
export function text(rng: Rng, n: number): Buffer {
  const r = rng.int(4);
  if (r === 0) return rng.bytes(n);
  if (r === 1) return Buffer.from('Authentication failure '.repeat(Math.ceil(n / 23)).slice(0, n), 'latin1');
  if (r === 2) return Buffer.from('désolé ✓ '.repeat(n).slice(0, n), 'utf8').subarray(0, n);
  const b = rng.bytes(n);
  for (let i = 0; i < n; i++) b[i] = b[i]! & 0x1f;
  return b;
}
