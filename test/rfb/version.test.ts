import { describe, expect, it } from 'vitest';
import { negotiatedVersion, parseVersion } from '../../src/rfb/index.js';

describe('ProtocolVersion (RFC 6143 §7.1.1, rfbproto odd versions)', () => {
  it.each([
    ['RFB 003.003\n', '3.3'],
    ['RFB 003.005\n', '3.3'], // old clients; rfbproto says treat as 3.3
    ['RFB 003.004\n', '3.3'], // UltraVNC
    ['RFB 003.006\n', '3.3'], // UltraVNC
    ['RFB 003.007\n', '3.7'],
    ['RFB 003.008\n', '3.8'],
    ['RFB 003.889\n', '3.8'], // Apple Remote Desktop
    ['RFB 004.000\n', '3.8'], // Intel AMT KVM
    ['RFB 004.001\n', '3.8'], // RealVNC 4.x
    ['RFB 005.000\n', '3.8'], // RealVNC 5.x
    ['RFB 003.002\n', null],
    ['RFB 002.000\n', null],
    ['RFB 006.000\n', null],
  ])('%j → %s', (wire, expected) => {
    const parsed = parseVersion(Buffer.from(wire, 'latin1'));
    expect(parsed).not.toBeNull();
    expect(negotiatedVersion(parsed!)).toBe(expected);
  });

  it.each(['SSH-2.0-Open\n', 'RFB 3.8     \n', 'RFB 003.008\r', 'rfb 003.008\n', 'RFB 003.00x\n'])('rejects %j', (wire) => {
    expect(parseVersion(Buffer.from(wire, 'latin1'))).toBeNull();
  });
});
