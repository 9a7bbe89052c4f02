import { VncgateError } from '../../../src/errors.js';
import { LIMITS, negotiatedVersion, parseVersion, vncAuthResponse, type ServerHandshakeOptions, type ServerSecurity } from '../../../src/rfb/index.js';
import type { Rng } from './rng.js';
import { Script, versionString, type Transcript } from './script.js';

/**
 * What a browser (an RFB client) might send to vncgate's server role: every version, security
 * choices, VncAuth responses right and wrong, then ClientInit and whatever a pipelining client
 * sends after it (up to past the handshake buffer limit). The verdict (accept or reject) comes
 * before any input, after it all, or in between.
 */

export type VerdictTiming = 'early' | 'late' | 'between';

export type BrowserCase = {
  options: ServerHandshakeOptions;
  verdict: { ok: true } | { ok: false; error: VncgateError };
  timing: VerdictTiming;
  transcript: Transcript;
  /** Where security ends and ClientInit begins; null when the script never gets there. */
  securityEnd: number | null;
  /**
   * Where the engine starts holding bytes until the verdict (after the version for 3.3/3.7, after
   * security for 3.8), if the script gets there without failing first.
   */
  waitStart: number | null;
};

const SECURITY_LISTS: readonly (readonly ServerSecurity[])[] = [['none'], ['none'], ['vncauth', 'none'], ['none', 'vncauth'], ['vncauth']];
const REJECTIONS = ['BACKEND_ERR_REFUSED', 'BACKEND_ERR_TIMEOUT', 'TOKEN_ERR_INVALID', 'RFB_ERR_AUTH_FAILED'] as const;

/** A few fixed passwords and challenges, so right answers cost no DES per input. */
const AUTH_POOL = Array.from({ length: 8 }, (_, i) => {
  const password = Buffer.from(`pw-${i}-${'x'.repeat(i)}`);
  const challenge = Buffer.alloc(16, i * 17 + 3);
  return { password, challenge, response: vncAuthResponse(password, challenge) };
});

export function browserCase(rng: Rng): BrowserCase {
  const security = rng.pick(SECURITY_LISTS);
  const auth = rng.pick(AUTH_POOL);
  const options: ServerHandshakeOptions = { security, password: auth.password, randomBytes: () => Buffer.from(auth.challenge) };
  const verdict = rng.chance(0.8)
    ? ({ ok: true } as const)
    : { ok: false as const, error: new VncgateError(rng.pick(REJECTIONS), 'rejected by the fuzzer') };
  const timing = rng.pick(['early', 'early', 'late', 'late', 'between'] as const);
  const s = new Script();
  let securityEnd: number | null = null;
  let waitStart: number | null = null;
  const { wire, kind } = versionString(rng);
  s.push(wire);
  const parsed = parseVersion(wire);
  const version = parsed ? negotiatedVersion(parsed) : null;
  if (kind !== 'ok' || !version) {
    s.decide('failed', 'RFB_ERR_CLIENT_PROTOCOL');
  } else {
    // 3.3 and 3.7 clients wait for the verdict before any negotiation.
    if (version !== '3.8') {
      waitStart = s.length;
      if (!verdict.ok) s.decide('failed', verdict.error.code);
    }
    let chosen: ServerSecurity | undefined = security[0];
    if (version !== '3.3') {
      const t = rng.chance(0.9) ? (rng.pick(security) === 'none' ? 1 : 2) : rng.int(256);
      s.u8(t);
      chosen = security.find((x) => (x === 'none' ? 1 : 2) === t);
      if (!chosen) s.decide('failed', 'RFB_ERR_CLIENT_PROTOCOL');
    }
    if (chosen === 'vncauth') {
      const right = rng.chance(0.8);
      s.push(right ? auth.response : rng.bytes(16));
      if (!right) s.decide('failed', 'RFB_ERR_CLIENT_AUTH');
    }
    if (chosen) {
      securityEnd = s.length;
      if (version === '3.8' && s.decision === null) waitStart = s.length;
      s.decide(verdict.ok ? 'established' : 'failed', verdict.ok ? null : verdict.error.code);
      s.u8(rng.chance(0.8) ? rng.int(2) : rng.int(256)); // ClientInit, §7.3.1
      const big = rng.chance(0.03);
      s.push(rng.bytes(big ? rng.range(LIMITS.maxHandshakeBufferBytes - 64, LIMITS.maxHandshakeBufferBytes + 4096) : rng.size(11)));
    }
  }
  if (s.decision?.outcome === 'failed' && rng.chance(0.3)) s.push(rng.bytes(rng.size(8)));
  return { options, verdict, timing, transcript: s.finish(), securityEnd, waitStart };
}
