import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { RfbClientHandshake, type ClientAction, type ClientHandshakeOptions, type SecurityChoice } from '../../src/rfb/index.js';
import { chunkings, hex } from './chunkings.js';

type Outcome =
  | { established: SecurityChoice; version: string; trailing?: Buffer }
  | { failed: ErrorCode; details?: Record<string, unknown> }
  | { startTls: 'tls-anon' | 'tls-x509' };

type Vector = {
  name: string;
  options: ClientHandshakeOptions;
  /** Everything the server sends (before TLS, when there is a TLS phase). */
  server: Buffer;
  /** Everything the client must send in answer. */
  client: Buffer;
  outcome: Outcome;
  /** The exchange inside TLS, fed after tlsEstablished(). */
  inTls?: { server: Buffer; client: Buffer; outcome: Outcome };
};

const pw = Buffer.from('passwd');
const V38 = '"RFB 003.008\\n"';
const CHALLENGE = '000102030405060708090a0b0c0d0e0f';
const RESPONSE = 'e8399b58571e87ed8445c8716b6dd945';

const vectors: Vector[] = [
  {
    name: '3.8 None',
    options: { security: ['none'] },
    server: hex`${V38}  01 01  # one type: None
                00000000     # SecurityResult OK`,
    client: hex`${V38}  01`,
    outcome: { established: 'none', version: '3.8' },
  },
  {
    name: '3.8 VncAuth',
    options: { security: ['vncauth'], password: pw },
    server: hex`${V38}  02 01 02  # None, VncAuth
                ${CHALLENGE}
                00000000`,
    client: hex`${V38}  02  ${RESPONSE}`,
    outcome: { established: 'vncauth', version: '3.8' },
  },
  {
    name: '3.8 VncAuth refused with reason',
    options: { security: ['vncauth'], password: pw },
    server: hex`${V38}  01 02  ${CHALLENGE}
                00000001  00000015 "Authentication failed"`,
    client: hex`${V38}  02  ${RESPONSE}`,
    outcome: { failed: 'RFB_ERR_AUTH_FAILED', details: { serverReason: 'Authentication failed' } },
  },
  {
    name: 'preference order decides: vncauth before none',
    options: { security: ['vncauth', 'none'], password: pw },
    server: hex`${V38}  02 01 02  ${CHALLENGE}  00000000`,
    client: hex`${V38}  02  ${RESPONSE}`,
    outcome: { established: 'vncauth', version: '3.8' },
  },
  {
    name: 'a server offering only None is refused when only vncauth is configured (no downgrade)',
    options: { security: ['vncauth'], password: pw },
    server: hex`${V38}  01 01`,
    client: hex`${V38}`,
    outcome: { failed: 'RFB_ERR_NO_COMMON_SECURITY', details: { offeredTypes: ['None'] } },
  },
  {
    name: 'server refuses with a zero-length type list and a reason',
    options: { security: ['none'] },
    server: hex`${V38}  00  0000001a "Too many security failures"`,
    client: hex`${V38}`,
    outcome: { failed: 'RFB_ERR_SERVER_REFUSED', details: { serverReason: 'Too many security failures' } },
  },
  {
    name: 'oversized reason is not awaited',
    options: { security: ['none'] },
    server: hex`${V38}  00  00100000`,
    client: hex`${V38}`,
    outcome: { failed: 'RFB_ERR_SERVER_REFUSED', details: { reasonLength: 0x100000 } },
  },
  {
    name: '3.3 server imposes None: no SecurityResult',
    options: { security: ['none'] },
    server: hex`"RFB 003.003\\n"  00000001`,
    client: hex`"RFB 003.003\\n"`,
    outcome: { established: 'none', version: '3.3' },
  },
  {
    name: '3.3 server imposes VncAuth',
    options: { security: ['none', 'vncauth'], password: pw },
    server: hex`"RFB 003.003\\n"  00000002  ${CHALLENGE}  00000000`,
    client: hex`"RFB 003.003\\n"  ${RESPONSE}`,
    outcome: { established: 'vncauth', version: '3.3' },
  },
  {
    name: '3.3 VncAuth failure carries no reason',
    options: { security: ['vncauth'], password: pw },
    server: hex`"RFB 003.003\\n"  00000002  ${CHALLENGE}  00000001`,
    client: hex`"RFB 003.003\\n"  ${RESPONSE}`,
    outcome: { failed: 'RFB_ERR_AUTH_FAILED' },
  },
  {
    name: '3.3 connection failed with reason',
    options: { security: ['none'] },
    server: hex`"RFB 003.003\\n"  00000000  00000004 "busy"`,
    client: hex`"RFB 003.003\\n"`,
    outcome: { failed: 'RFB_ERR_SERVER_REFUSED', details: { serverReason: 'busy' } },
  },
  {
    name: '3.3 server imposing VncAuth when only None is configured',
    options: { security: ['none'] },
    server: hex`"RFB 003.003\\n"  00000002`,
    client: hex`"RFB 003.003\\n"`,
    outcome: { failed: 'RFB_ERR_NO_COMMON_SECURITY' },
  },
  {
    name: '3.7 None: no SecurityResult',
    options: { security: ['none'] },
    server: hex`"RFB 003.007\\n"  01 01`,
    client: hex`"RFB 003.007\\n"  01`,
    outcome: { established: 'none', version: '3.7' },
  },
  {
    name: '3.7 VncAuth',
    options: { security: ['vncauth'], password: pw },
    server: hex`"RFB 003.007\\n"  01 02  ${CHALLENGE}  00000000`,
    client: hex`"RFB 003.007\\n"  02  ${RESPONSE}`,
    outcome: { established: 'vncauth', version: '3.7' },
  },
  {
    name: 'Apple 3.889 is answered with 3.8',
    options: { security: ['none'] },
    server: hex`"RFB 003.889\\n"  01 01  00000000`,
    client: hex`${V38}  01`,
    outcome: { established: 'none', version: '3.8' },
  },
  {
    name: 'RealVNC 4.001 is answered with 3.8',
    options: { security: ['none'] },
    server: hex`"RFB 004.001\\n"  01 01  00000000`,
    client: hex`${V38}  01`,
    outcome: { established: 'none', version: '3.8' },
  },
  {
    name: 'UltraVNC 3.6 is answered with 3.3',
    options: { security: ['none'] },
    server: hex`"RFB 003.006\\n"  00000001`,
    client: hex`"RFB 003.003\\n"`,
    outcome: { established: 'none', version: '3.3' },
  },
  {
    name: 'not an RFB server',
    options: { security: ['none'] },
    server: hex`"HTTP/1.1 400"`,
    client: hex``,
    outcome: { failed: 'RFB_ERR_NOT_RFB' },
  },
  {
    name: 'RFB 2.x is unsupported',
    options: { security: ['none'] },
    server: hex`"RFB 002.000\\n"`,
    client: hex``,
    outcome: { failed: 'RFB_ERR_UNSUPPORTED_VERSION' },
  },
  {
    name: 'bytes after SecurityResult are handed over as trailing',
    options: { security: ['none'] },
    server: hex`${V38}  01 01  00000000  cafe`,
    client: hex`${V38}  01`,
    outcome: { established: 'none', version: '3.8', trailing: Buffer.from('cafe', 'hex') },
  },
  {
    name: 'VeNCrypt Plain (no TLS)',
    options: { security: ['vencrypt-plain'], username: 'bob', password: Buffer.from('pw') },
    server: hex`${V38}  01 13      # VeNCrypt
                0002           # VeNCrypt 0.2
                00             # version accepted
                01 00000100    # subtypes: Plain
                00000000       # SecurityResult OK`,
    client: hex`${V38}  13  0002  00000100
                00000003 00000002 "bob" "pw"`,
    outcome: { established: 'vencrypt-plain', version: '3.8' },
  },
  {
    name: 'VeNCrypt X509Vnc: TLS hand-off, then VncAuth inside',
    options: { security: ['vencrypt-x509vnc'], password: pw },
    server: hex`${V38}  02 02 13  0002  00  02 00000104 00000105  01`,
    client: hex`${V38}  13  0002  00000105`,
    outcome: { startTls: 'tls-x509' },
    inTls: {
      server: hex`${CHALLENGE} 00000000`,
      client: hex`${RESPONSE}`,
      outcome: { established: 'vencrypt-x509vnc', version: '3.8' },
    },
  },
  {
    name: 'VeNCrypt X509None: SecurityResult after TLS',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0002  00  01 00000104  01`,
    client: hex`${V38}  13  0002  00000104`,
    outcome: { startTls: 'tls-x509' },
    inTls: { server: hex`00000000`, client: hex``, outcome: { established: 'vencrypt-x509none', version: '3.8' } },
  },
  {
    name: 'VeNCrypt TLSPlain: credentials only inside anonymous TLS',
    options: { security: ['vencrypt-tlsplain'], username: 'u', password: Buffer.from('p') },
    server: hex`${V38}  01 13  0002  00  03 00000101 00000102 00000103  01`,
    client: hex`${V38}  13  0002  00000103`,
    outcome: { startTls: 'tls-anon' },
    inTls: {
      server: hex`00000001 00000006 "denied"`,
      client: hex`00000001 00000001 "u" "p"`,
      outcome: { failed: 'RFB_ERR_AUTH_FAILED', details: { serverReason: 'denied' } },
    },
  },
  {
    name: 'VeNCrypt subtype preference: first configured subtype the server offers',
    options: { security: ['vencrypt-x509plain', 'vencrypt-x509none'], username: 'u', password: Buffer.from('p') },
    server: hex`${V38}  01 13  0002  00  02 00000104 00000101  01`,
    client: hex`${V38}  13  0002  00000104`,
    outcome: { startTls: 'tls-x509' },
  },
  {
    name: 'VeNCrypt with no common subtype lists what the server offered',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0002  00  02 00000101 00000102`,
    client: hex`${V38}  13  0002`,
    outcome: { failed: 'RFB_ERR_NO_COMMON_SECURITY', details: { offeredSubtypes: ['TLSNone', 'TLSVnc'] } },
  },
  {
    name: 'VeNCrypt 0.1 is refused',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0001`,
    client: hex`${V38}  13`,
    outcome: { failed: 'RFB_ERR_VENCRYPT_VERSION' },
  },
  {
    name: 'VeNCrypt version ack failure',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0002  01`,
    client: hex`${V38}  13  0002`,
    outcome: { failed: 'RFB_ERR_VENCRYPT_VERSION' },
  },
  {
    name: 'VeNCrypt subtype rejected (accept byte 0)',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0002  00  01 00000104  00`,
    client: hex`${V38}  13  0002  00000104`,
    outcome: { failed: 'RFB_ERR_VENCRYPT_REJECTED' },
  },
  {
    name: 'plaintext where the TLS handshake should start',
    options: { security: ['vencrypt-x509none'] },
    server: hex`${V38}  01 13  0002  00  01 00000104  01  00000000`,
    client: hex`${V38}  13  0002  00000104`,
    outcome: { failed: 'RFB_ERR_PROTOCOL' },
  },
];

/** Feeds chunks as the shell would: once established, later bytes bypass the engine (raw pipe). */
function run(engine: RfbClientHandshake, chunks: Buffer[]): { sent: Buffer; last: ClientAction | undefined } {
  const sent: Buffer[] = [];
  let last: ClientAction | undefined;
  for (const c of chunks) {
    if (last?.type === 'established') {
      last = { ...last, trailing: Buffer.concat([last.trailing, c]) };
      continue;
    }
    for (const a of engine.receive(c)) {
      if (a.type === 'send') sent.push(a.bytes);
      else last = a;
    }
  }
  return { sent: Buffer.concat(sent), last };
}

function check(last: ClientAction | undefined, outcome: Outcome): void {
  if ('established' in outcome) {
    expect(last?.type).toBe('established');
    if (last?.type !== 'established') return;
    expect(last.info.security).toBe(outcome.established);
    expect(last.info.version).toBe(outcome.version);
    expect(last.trailing).toEqual(outcome.trailing ?? Buffer.alloc(0));
  } else if ('failed' in outcome) {
    expect(last?.type).toBe('failed');
    if (last?.type !== 'failed') return;
    expect(last.error.code).toBe(outcome.failed);
    if (outcome.details) expect(last.error.details).toMatchObject(outcome.details);
  } else {
    expect(last).toEqual({ type: 'startTls', transport: outcome.startTls });
  }
}

describe('RfbClientHandshake golden vectors', () => {
  for (const v of vectors) {
    it(v.name, () => {
      let runs = 0;
      for (const { name, chunks } of chunkings(v.server)) {
        const engine = new RfbClientHandshake(v.options);
        const { sent, last } = run(engine, chunks);
        expect(sent.toString('hex'), name).toBe(v.client.toString('hex'));
        check(last, v.outcome);
        if (v.inTls) {
          const before = Buffer.concat(engine.tlsEstablished().flatMap((a) => (a.type === 'send' ? [a.bytes] : [])));
          const inner = run(engine, [v.inTls.server]);
          expect(Buffer.concat([before, inner.sent]).toString('hex')).toBe(v.inTls.client.toString('hex'));
          check(inner.last, v.inTls.outcome);
        }
        runs++;
      }
      expect(runs).toBe(v.server.length + 1);
      if (v.inTls) {
        for (const { name, chunks } of chunkings(v.inTls.server)) {
          const engine = new RfbClientHandshake(v.options);
          run(engine, [v.server]);
          const before = Buffer.concat(engine.tlsEstablished().flatMap((a) => (a.type === 'send' ? [a.bytes] : [])));
          const inner = run(engine, chunks);
          expect(Buffer.concat([before, inner.sent]).toString('hex'), name).toBe(v.inTls.client.toString('hex'));
          check(inner.last, v.inTls.outcome);
        }
      }
    });
  }
});

describe('RfbClientHandshake misuse and limits', () => {
  it('refuses a configuration that needs a password it lacks', () => {
    expect(() => new RfbClientHandshake({ security: ['vncauth'] })).toThrow(expect.objectContaining({ code: 'RFB_ERR_CREDENTIALS_MISSING' }));
    expect(() => new RfbClientHandshake({ security: ['vencrypt-x509plain'], password: pw })).toThrow(
      expect.objectContaining({ code: 'RFB_ERR_CREDENTIALS_MISSING' }),
    );
    expect(() => new RfbClientHandshake({ security: [] })).toThrow(TypeError);
  });

  it('fails with RFB_ERR_LIMIT instead of buffering a flood', () => {
    const engine = new RfbClientHandshake({ security: ['none'] });
    engine.receive(hex`${V38}`);
    // The server now floods bytes that never form a complete type list... (255 types need 256 bytes,
    // so flood after a valid list has been consumed is impossible; use the VncAuth challenge wait.)
    const e2 = new RfbClientHandshake({ security: ['vencrypt-x509none'] });
    const actions = e2.receive(Buffer.concat([hex`${V38} 01 13 0002 00 ff`, Buffer.alloc(70_000)]));
    // 255 subtypes need 1020 bytes; the rest is junk that would follow. The engine must not keep it.
    expect(e2.bufferedBytes).toBeLessThanOrEqual(64 * 1024);
    expect(actions.some((a) => a.type === 'failed')).toBe(true);
    expect(engine.bufferedBytes).toBe(0);
  });

  it('ignores input after it has failed', () => {
    const engine = new RfbClientHandshake({ security: ['none'] });
    expect(engine.receive(Buffer.from('nonsense!!!!'))[0]?.type).toBe('failed');
    expect(engine.receive(Buffer.from('more'))).toEqual([]);
  });
});
