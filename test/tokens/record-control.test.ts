import { describe, expect, it } from 'vitest';
import { parseTokenRequest } from '../../src/proxy/token-request.js';
import { decodeRecord, encodeRecord } from '../../src/tokens/index.js';
import { newRecord } from '../../src/tokens/record.js';

const TARGET = { kind: 'static', host: '10.0.0.5', port: 5900 } as const;
const CTX = { defaultTtlSeconds: 300, ironic: false, hasProfile: () => true };

describe('token `control` (shared consoles, issue 18)', () => {
  it('is stored only when true, survives a round trip, and anything but true refuses the record', () => {
    const plain = newRecord(TARGET, 0, 60_000, {});
    expect(plain).not.toHaveProperty('control');
    expect(newRecord(TARGET, 0, 60_000, { control: false })).not.toHaveProperty('control');
    const withControl = newRecord(TARGET, 0, 60_000, { control: true });
    const back = decodeRecord(encodeRecord(withControl));
    expect(back.ok && back.record.control).toBe(true);
    const json = JSON.parse(encodeRecord(plain)) as Record<string, unknown>;
    for (const bad of [false, 'true', 1, {}]) expect(decodeRecord(JSON.stringify({ ...json, control: bad })).ok).toBe(false);
  });

  it('the token API body takes "control": true, refuses a non-boolean, and says nothing when absent or false', () => {
    expect(parseTokenRequest({ target: '10.0.0.5:5900', control: true }, CTX).control).toBe(true);
    expect(parseTokenRequest({ target: '10.0.0.5:5900', control: false }, CTX)).not.toHaveProperty('control');
    expect(parseTokenRequest({ target: '10.0.0.5:5900' }, CTX)).not.toHaveProperty('control');
    expect(() => parseTokenRequest({ target: '10.0.0.5:5900', control: 'yes' }, CTX)).toThrow();
  });
});
