import { RFB_VERSIONS, type RfbVersion } from './constants.js';

export type ParsedVersion = {
  /** What the peer sent, without "RFB " and the newline, e.g. "003.889". */
  raw: string;
  major: number;
  minor: number;
};

const VERSION_RE = /^RFB (\d{3})\.(\d{3})\n$/;

/** Parses a 12-byte ProtocolVersion (§7.1.1). Returns null when it is not one. */
export function parseVersion(bytes: Buffer): ParsedVersion | null {
  const m = VERSION_RE.exec(bytes.toString('latin1'));
  if (!m || m[1] === undefined || m[2] === undefined) return null;
  return { raw: `${m[1]}.${m[2]}`, major: Number(m[1]), minor: Number(m[2]) };
}

/**
 * Maps what a peer announced onto the version we will speak with it.
 * - 3.3 to 3.6: 3.3 semantics. rfbproto says 3.5 (some old clients) means 3.3; UltraVNC sends 3.4
 *   and 3.6 and speaks the 3.3 handshake.
 * - 3.7: 3.7.
 * - 3.8 and above within major 3 (Apple Remote Desktop sends 3.889), and majors 4 and 5 (RealVNC
 *   4.x/5.x, Intel AMT KVM send 4.000/4.001/5.000): 3.8, the highest we speak, which those servers
 *   accept.
 * - Anything older than 3.3: unsupported (null).
 */
export function negotiatedVersion(v: ParsedVersion): RfbVersion | null {
  if (v.major === 3) {
    if (v.minor < 3) return null;
    if (v.minor < 7) return '3.3';
    if (v.minor === 7) return '3.7';
    return '3.8';
  }
  if (v.major >= 4 && v.major <= 5) return '3.8';
  return null;
}

export function versionBytes(v: RfbVersion): Buffer {
  return Buffer.from(RFB_VERSIONS[v], 'latin1');
}

export function atLeast38(v: RfbVersion): boolean {
  return v === '3.8';
}
