import { describe, expect, it } from 'vitest';
import { verifyVncAuthResponse, vncAuthResponse } from '../../src/rfb/index.js';

const challenge = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

describe('VNC Authentication (RFC 6143 §7.2.2)', () => {
  it('matches the classic DES result for password "passwd"', () => {
    expect(vncAuthResponse(Buffer.from('passwd'), challenge).toString('hex')).toBe('e8399b58571e87ed8445c8716b6dd945');
  });

  it('uses only the first 8 password bytes', () => {
    expect(vncAuthResponse(Buffer.from('12345678-ignored'), challenge)).toEqual(vncAuthResponse(Buffer.from('12345678'), challenge));
    expect(vncAuthResponse(Buffer.from('1234567'), challenge)).not.toEqual(vncAuthResponse(Buffer.from('12345678'), challenge));
  });

  it('verifies responses, rejecting wrong passwords and wrong lengths', () => {
    const good = vncAuthResponse(Buffer.from('s3cret'), challenge);
    expect(verifyVncAuthResponse(Buffer.from('s3cret'), challenge, good)).toBe(true);
    expect(verifyVncAuthResponse(Buffer.from('s3cres'), challenge, good)).toBe(false);
    expect(verifyVncAuthResponse(Buffer.from('s3cret'), challenge, good.subarray(0, 15))).toBe(false);
  });
});
