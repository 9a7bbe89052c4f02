import type { ErrorCode } from '../../../src/errors.js';
import {
  LIMITS,
  SECURITY_CHOICES,
  encodePixelFormat,
  negotiatedVersion,
  parseVersion,
  type ClientHandshakeOptions,
  type RfbVersion,
  type SecurityChoice,
} from '../../../src/rfb/index.js';
import type { Rng } from './rng.js';
import { Script, declaredLength, text, versionString, type Transcript } from './script.js';

/**
 * What a console endpoint (an RFB server) might send to vncgate's client role, generated so that
 * most inputs get deep: every version, security-type lists, VeNCrypt version, subtype and accept
 * negotiation, VncAuth challenges, SecurityResult with reasons of every declared length, and a
 * ServerInit with names of every length. The generator mirrors the engine's choices to keep the
 * transcript coherent and records what an unmutated transcript must lead to.
 */

const ALL_CHOICES = Object.keys(SECURITY_CHOICES) as SecurityChoice[];
const TYPES = [1, 2, 19, 16, 5, 18, 30, 0];
const SUBTYPES = [256, 257, 258, 259, 260, 261, 262, 263, 264, 0, 2, 19];

export function clientOptions(rng: Rng): ClientHandshakeOptions {
  const pool = [...ALL_CHOICES];
  const security: SecurityChoice[] = [];
  const n = rng.range(1, pool.length);
  for (let i = 0; i < n; i++) security.push(pool.splice(rng.int(pool.length), 1)[0]!);
  // Rarely, Plain credentials over our own bound: the engine must fail, not send them.
  const long = rng.chance(0.01);
  return {
    security,
    username: long ? 'u'.repeat(LIMITS.maxPlainCredentialBytes + 1) : 'operator',
    password: rng.bytes(rng.range(1, 12)),
  };
}

export function backendTranscript(rng: Rng, opts: ClientHandshakeOptions): Transcript {
  const s = new Script();
  const { wire, kind } = versionString(rng);
  s.push(wire);
  const parsed = parseVersion(wire);
  const version = parsed ? negotiatedVersion(parsed) : null;
  if (kind === 'malformed' || !parsed) s.decide('failed', 'RFB_ERR_NOT_RFB');
  else if (!version) s.decide('failed', 'RFB_ERR_UNSUPPORTED_VERSION');
  else security(rng, s, opts, version);
  if (s.decision?.outcome === 'failed' && rng.chance(0.3)) s.push(rng.bytes(rng.size(8)));
  return s.finish();
}

function security(rng: Rng, s: Script, opts: ClientHandshakeOptions, version: RfbVersion): void {
  const prefs = opts.security;
  if (version === '3.3') {
    // §7.1.2: the server imposes one type as a U32.
    const t = rng.chance(0.85) ? rng.pick([0, 1, 2, 2, 19]) : rng.u32();
    s.u32(t);
    if (t === 0) return reason(rng, s, 'RFB_ERR_SERVER_REFUSED');
    const choice = prefs.find((c) => SECURITY_CHOICES[c].type === t && SECURITY_CHOICES[c].subtype === null);
    if (!choice) return s.decide('failed', 'RFB_ERR_NO_COMMON_SECURITY');
    return innerAuth(rng, s, opts, version, choice);
  }
  const n = rng.chance(0.1) ? 0 : rng.chance(0.9) ? rng.range(1, 4) : rng.range(1, 255);
  s.u8(n);
  if (n === 0) return reason(rng, s, 'RFB_ERR_SERVER_REFUSED');
  const types: number[] = [];
  for (let i = 0; i < n; i++) types.push(rng.chance(0.9) ? rng.pick(TYPES) : rng.int(256));
  for (const t of types) s.u8(t);
  const choice = prefs.find((c) => types.includes(SECURITY_CHOICES[c].type));
  if (!choice) return s.decide('failed', 'RFB_ERR_NO_COMMON_SECURITY');
  if (SECURITY_CHOICES[choice].type !== 19) return innerAuth(rng, s, opts, version, choice);
  return vencrypt(rng, s, opts, version);
}

/** rfbproto VeNCrypt: version, ack, subtype list, and the accept byte before TLS. */
function vencrypt(rng: Rng, s: Script, opts: ClientHandshakeOptions, version: RfbVersion): void {
  const [major, minor] = rng.chance(0.85) ? [0, 2] : rng.pick([[0, 1], [1, 0], [0, 3], [0, 0], [2, 2], [0, 255]] as const);
  s.u8(major).u8(minor);
  if (major !== 0 || minor < 2) return s.decide('failed', 'RFB_ERR_VENCRYPT_VERSION');
  const ack = rng.chance(0.92) ? 0 : rng.range(1, 255);
  s.u8(ack);
  if (ack !== 0) return s.decide('failed', 'RFB_ERR_VENCRYPT_VERSION');
  const n = rng.chance(0.05) ? 0 : rng.chance(0.9) ? rng.range(1, 9) : rng.range(1, 255);
  s.u8(n);
  if (n === 0) return s.decide('failed', 'RFB_ERR_NO_COMMON_SECURITY');
  const subtypes: number[] = [];
  for (let i = 0; i < n; i++) subtypes.push(rng.chance(0.9) ? rng.pick(SUBTYPES) : rng.u32());
  for (const t of subtypes) s.u32(t);
  const choice = opts.security.find((c) => {
    const sub = SECURITY_CHOICES[c].subtype;
    return sub !== null && subtypes.includes(sub);
  });
  if (!choice) return s.decide('failed', 'RFB_ERR_NO_COMMON_SECURITY');
  if (SECURITY_CHOICES[choice].transport !== 'plain') {
    const accept = rng.chance(0.92) ? 1 : rng.pick([0, 2, 255]);
    s.u8(accept);
    if (accept !== 1) return s.decide('failed', 'RFB_ERR_VENCRYPT_REJECTED');
    if (rng.chance(0.03)) {
      // Plaintext where the TLS ClientHello's answer should be.
      s.u8(rng.int(256));
      return s.decide('failed', 'RFB_ERR_PROTOCOL');
    }
    s.tlsAt = s.length;
  }
  innerAuth(rng, s, opts, version, choice);
}

function innerAuth(rng: Rng, s: Script, opts: ClientHandshakeOptions, version: RfbVersion, choice: SecurityChoice): void {
  const c = SECURITY_CHOICES[choice];
  if (c.inner === 'plain' && (opts.username ?? '').length > LIMITS.maxPlainCredentialBytes) {
    return s.decide('failed', 'RFB_ERR_CREDENTIALS_MISSING');
  }
  if (c.inner === 'none' && c.type === 1 && version !== '3.8') return established(rng, s);
  if (c.inner === 'vnc') s.push(rng.bytes(16));
  securityResult(rng, s, version);
}

function securityResult(rng: Rng, s: Script, version: RfbVersion): void {
  const status = rng.chance(0.7) ? 0 : rng.chance(0.8) ? rng.pick([1, 2]) : rng.u32() || 1;
  s.u32(status);
  if (status === 0) return established(rng, s);
  if (version === '3.8') return reason(rng, s, 'RFB_ERR_AUTH_FAILED');
  s.decide('failed', 'RFB_ERR_AUTH_FAILED');
}

/** A U32 length and that many bytes; a length past the bound fails as soon as it is read. */
function reason(rng: Rng, s: Script, code: ErrorCode): void {
  const len = declaredLength(rng, LIMITS.maxReasonBytes);
  s.u32(len);
  if (len > LIMITS.maxReasonBytes) {
    s.decide('failed', code);
    if (rng.chance(0.5)) s.push(rng.bytes(rng.size(10)));
    return;
  }
  s.push(text(rng, len));
  s.decide('failed', code);
}

/** Security is over: what follows is ServerInit (§7.3.2) and then whatever the server streams. */
function established(rng: Rng, s: Script): void {
  s.decide('established');
  const r = rng.int(10);
  if (r === 0) return;
  if (r === 1) {
    s.push(rng.bytes(rng.size(10)));
    return;
  }
  const init = serverInitBytes(rng);
  s.serverInit = { at: s.length, nameLength: init.nameLength };
  s.push(init.bytes);
  if (rng.chance(0.5)) s.push(rng.bytes(rng.size(11)));
}

/** A ServerInit (§7.3.2) whose declared name length is honest, at the bound, past it, or absurd. */
export function serverInitBytes(rng: Rng): { bytes: Buffer; nameLength: number } {
  const s = new Script();
  const nameLength = declaredLength(rng, LIMITS.maxDesktopNameBytes);
  s.u32(((rng.range(1, 4096) << 16) | rng.range(1, 4096)) >>> 0);
  s.push(
    encodePixelFormat({
      bitsPerPixel: rng.pick([8, 16, 32, rng.int(256)]),
      depth: rng.pick([8, 16, 24, rng.int(256)]),
      bigEndian: rng.chance(0.5),
      trueColour: rng.chance(0.9),
      redMax: rng.int(65536),
      greenMax: rng.int(65536),
      blueMax: rng.int(65536),
      redShift: rng.int(256),
      greenShift: rng.int(256),
      blueShift: rng.int(256),
    }),
  );
  s.u32(nameLength);
  if (nameLength <= LIMITS.maxDesktopNameBytes) s.push(text(rng, nameLength));
  return { bytes: s.finish().bytes, nameLength };
}
