import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LIMITS, RfbClientHandshake, RfbServerHandshake, ServerInitReader, type SecurityChoice } from '../../src/rfb/index.js';

/**
 * Property: arbitrary peer bytes, in any chunking, never make an engine throw and never make it
 * hold more than its limit. Inputs start with a valid ProtocolVersion half the time so the fuzzer
 * reaches the deeper states. FUZZ_RUNS raises the count; the million-input run per role is
 * test/rfb/fuzz-million.test.ts (figures as JSON: scripts/fuzz-rfb.mts).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

const prefixes = ['', 'RFB 003.008\n', 'RFB 003.003\n', 'RFB 003.007\n', 'RFB 003.008\n\x01\x13\x00\x02\x00', 'RFB 003.008\n\x01\x02'];
const peerBytes = fc
  .tuple(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 2048 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 64 }))
  .map(([prefix, body, cuts]) => ({ bytes: Buffer.concat([Buffer.from(prefix, 'latin1'), body]), cuts }));

function* split(bytes: Buffer, cuts: number[]): Generator<Buffer> {
  let at = 0;
  for (const c of cuts) {
    if (at >= bytes.length) return;
    yield bytes.subarray(at, at + c);
    at += c;
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

const allChoices: SecurityChoice[] = [
  'vencrypt-x509plain',
  'vencrypt-x509vnc',
  'vencrypt-x509none',
  'vencrypt-tlsplain',
  'vencrypt-tlsvnc',
  'vencrypt-tlsnone',
  'vencrypt-plain',
  'vncauth',
  'none',
];

describe('fuzz: engines never throw on peer input and stay within limits', () => {
  it('client role', () => {
    fc.assert(
      fc.property(peerBytes, fc.subarray(allChoices, { minLength: 1 }), ({ bytes, cuts }, security) => {
        const engine = new RfbClientHandshake({ security, username: 'u', password: Buffer.from('p') });
        for (const chunk of split(bytes, cuts)) {
          const actions = engine.receive(chunk);
          expect(engine.bufferedBytes).toBeLessThanOrEqual(LIMITS.maxHandshakeBufferBytes);
          if (actions.some((a) => a.type === 'startTls')) engine.tlsEstablished();
          if (actions.some((a) => a.type === 'established' || a.type === 'failed')) break;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('server role', () => {
    fc.assert(
      fc.property(peerBytes, fc.boolean(), fc.boolean(), ({ bytes, cuts }, withVncAuth, acceptFirst) => {
        const engine = new RfbServerHandshake(
          withVncAuth ? { security: ['vncauth', 'none'], password: Buffer.from('pw'), randomBytes: (n) => Buffer.alloc(n, 7) } : {},
        );
        engine.start();
        if (acceptFirst) engine.accept();
        for (const chunk of split(bytes, cuts)) {
          const actions = engine.receive(chunk);
          expect(engine.bufferedBytes).toBeLessThanOrEqual(LIMITS.maxHandshakeBufferBytes);
          if (actions.some((a) => a.type === 'established' || a.type === 'failed')) break;
        }
        if (!acceptFirst) engine.accept();
      }),
      { numRuns: RUNS },
    );
  });

  it('ServerInit reader', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8192 }), (bytes) => {
        const r = new ServerInitReader().receive(bytes);
        if (r.type === 'done') expect(r.init.name.length).toBeLessThanOrEqual(LIMITS.maxDesktopNameBytes);
      }),
      { numRuns: RUNS },
    );
  });
});
