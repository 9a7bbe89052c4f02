import { createCipheriv, timingSafeEqual } from 'node:crypto';
import { LIMITS } from './constants.js';

/** Reverses the bit order of a byte: VNC's DES key uses each byte's low bit first (§7.2.2). */
function reverseBits(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
  return r;
}

function vncDesKey(password: Uint8Array): Buffer {
  const key = Buffer.alloc(8);
  for (let i = 0; i < Math.min(password.length, LIMITS.vncPasswordBytes); i++) key[i] = reverseBits(password[i]!);
  return key;
}

/**
 * The VNC Authentication response: the 16-byte challenge encrypted with DES-ECB under the password.
 * OpenSSL 3 (Node ≥ 17) no longer offers single DES, but triple DES with K‖K‖K is the same
 * function (EDE with equal keys collapses to one encryption).
 */
export function vncAuthResponse(password: Uint8Array, challenge: Uint8Array): Buffer {
  if (challenge.length !== 16) throw new RangeError('VNC challenge must be 16 bytes');
  const k = vncDesKey(password);
  const cipher = createCipheriv('des-ede3-ecb', Buffer.concat([k, k, k]), null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(challenge), cipher.final()]);
}

/** Server side: does `response` answer `challenge` for `password`? Constant-time comparison. */
export function verifyVncAuthResponse(password: Uint8Array, challenge: Uint8Array, response: Uint8Array): boolean {
  if (response.length !== 16) return false;
  return timingSafeEqual(vncAuthResponse(password, challenge), response);
}
