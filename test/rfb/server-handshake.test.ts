import { describe, expect, it } from 'vitest';
import { VncgateError, type ErrorCode } from '../../src/errors.js';
import { RfbServerHandshake, type ServerAction, type ServerHandshakeOptions } from '../../src/rfb/index.js';
import { chunkings, hex } from './chunkings.js';

const V38 = '"RFB 003.008\\n"';
const CHALLENGE = '000102030405060708090a0b0c0d0e0f';
const RESPONSE = 'e8399b58571e87ed8445c8716b6dd945';
const vncauth: ServerHandshakeOptions = {
  security: ['vncauth'],
  password: Buffer.from('passwd'),
  randomBytes: () => Buffer.from(CHALLENGE, 'hex'),
};
const expired = new VncgateError('TOKEN_ERR_INVALID', 'token unknown');
const EXPIRED_REASON = expired.publicReason;
const reasonHex = (r: string): string => Buffer.from(r, 'latin1').toString('hex');

type Vector = {
  name: string;
  options?: ServerHandshakeOptions;
  /** When the verdict is given: before any client byte, or after all of them. */
  verdict: { when: 'before' | 'after'; accept: true } | { when: 'before' | 'after'; accept: false; error: VncgateError };
  client: Buffer;
  /** Everything we must send, including the initial ProtocolVersion. */
  server: Buffer;
  outcome: { established: 'none' | 'vncauth'; version: string; trailing?: Buffer } | { failed: ErrorCode };
};

const vectors: Vector[] = [
  {
    name: '3.8 client, None, accepted after the choice',
    verdict: { when: 'after', accept: true },
    client: hex`${V38}  01`,
    server: hex`${V38}  01 01  00000000`,
    outcome: { established: 'none', version: '3.8' },
  },
  {
    name: '3.8 client, None, accepted before the client spoke',
    verdict: { when: 'before', accept: true },
    client: hex`${V38}  01`,
    server: hex`${V38}  01 01  00000000`,
    outcome: { established: 'none', version: '3.8' },
  },
  {
    name: '3.8 client, rejected: SecurityResult failure with the public reason',
    verdict: { when: 'after', accept: false, error: expired },
    client: hex`${V38}  01`,
    server: hex`${V38}  01 01  00000001 ${EXPIRED_REASON.length.toString(16).padStart(8, '0')} ${reasonHex(EXPIRED_REASON)}`,
    outcome: { failed: 'TOKEN_ERR_INVALID' },
  },
  {
    name: '3.8 client, rejected before it spoke',
    verdict: { when: 'before', accept: false, error: expired },
    client: hex`${V38}  01`,
    server: hex`${V38}  01 01  00000001 ${EXPIRED_REASON.length.toString(16).padStart(8, '0')} ${reasonHex(EXPIRED_REASON)}`,
    outcome: { failed: 'TOKEN_ERR_INVALID' },
  },
  {
    name: '3.8 client chooses a type that was not offered',
    verdict: { when: 'after', accept: true },
    client: hex`${V38}  02`,
    server: hex`${V38}  01 01  00000001 00000019 "Security type not offered"`,
    outcome: { failed: 'RFB_ERR_CLIENT_PROTOCOL' },
  },
  {
    name: 'ClientInit pipelined after the choice is handed over as trailing',
    verdict: { when: 'after', accept: true },
    client: hex`${V38}  01  01`,
    server: hex`${V38}  01 01  00000000`,
    outcome: { established: 'none', version: '3.8', trailing: Buffer.from([1]) },
  },
  {
    name: '3.7 client, None: no SecurityResult',
    verdict: { when: 'after', accept: true },
    client: hex`"RFB 003.007\\n"  01`,
    server: hex`${V38}  01 01`,
    outcome: { established: 'none', version: '3.7' },
  },
  {
    name: '3.7 client, rejected: zero-length type list and reason',
    verdict: { when: 'after', accept: false, error: expired },
    client: hex`"RFB 003.007\\n"`,
    server: hex`${V38}  00  ${EXPIRED_REASON.length.toString(16).padStart(8, '0')} ${reasonHex(EXPIRED_REASON)}`,
    outcome: { failed: 'TOKEN_ERR_INVALID' },
  },
  {
    name: '3.3 client: the server imposes None',
    verdict: { when: 'after', accept: true },
    client: hex`"RFB 003.003\\n"`,
    server: hex`${V38}  00000001`,
    outcome: { established: 'none', version: '3.3' },
  },
  {
    name: '3.3 client, rejected: type 0 and reason',
    verdict: { when: 'before', accept: false, error: expired },
    client: hex`"RFB 003.003\\n"`,
    server: hex`${V38}  00000000  ${EXPIRED_REASON.length.toString(16).padStart(8, '0')} ${reasonHex(EXPIRED_REASON)}`,
    outcome: { failed: 'TOKEN_ERR_INVALID' },
  },
  {
    name: 'VncAuth offered and passed',
    options: vncauth,
    verdict: { when: 'before', accept: true },
    client: hex`${V38}  02  ${RESPONSE}`,
    server: hex`${V38}  01 02  ${CHALLENGE}  00000000`,
    outcome: { established: 'vncauth', version: '3.8' },
  },
  {
    name: 'VncAuth with a wrong response',
    options: vncauth,
    verdict: { when: 'before', accept: true },
    client: hex`${V38}  02  00000000000000000000000000000000`,
    server: hex`${V38}  01 02  ${CHALLENGE}  00000001 00000015 "Authentication failed"`,
    outcome: { failed: 'RFB_ERR_CLIENT_AUTH' },
  },
  {
    name: 'a client that is not RFB',
    verdict: { when: 'after', accept: true },
    client: hex`"GET / HTTP/1.1\\r\\n"`,
    server: hex`${V38}`,
    outcome: { failed: 'RFB_ERR_CLIENT_PROTOCOL' },
  },
];

function drive(v: Vector, chunks: Buffer[]): { sent: Buffer; last: ServerAction | undefined } {
  const engine = new RfbServerHandshake(v.options);
  const sent: Buffer[] = [];
  let last: ServerAction | undefined;
  const take = (actions: ServerAction[]): void => {
    for (const a of actions) {
      if (a.type === 'send') sent.push(a.bytes);
      else last = a;
    }
  };
  take(engine.start());
  const verdict = (): ServerAction[] => (v.verdict.accept ? engine.accept() : engine.reject(v.verdict.error));
  if (v.verdict.when === 'before') take(verdict());
  for (const c of chunks) {
    if (last?.type === 'established') {
      last = { ...last, trailing: Buffer.concat([last.trailing, c]) };
      continue;
    }
    take(engine.receive(c));
  }
  if (v.verdict.when === 'after' && last === undefined) take(verdict());
  return { sent: Buffer.concat(sent), last };
}

describe('RfbServerHandshake golden vectors', () => {
  for (const v of vectors) {
    it(v.name, () => {
      for (const { name, chunks } of chunkings(v.client)) {
        const { sent, last } = drive(v, chunks);
        expect(sent.toString('hex'), name).toBe(v.server.toString('hex'));
        if ('established' in v.outcome) {
          expect(last?.type, name).toBe('established');
          if (last?.type !== 'established') continue;
          expect(last.info.security).toBe(v.outcome.established);
          expect(last.info.version).toBe(v.outcome.version);
          expect(last.trailing).toEqual(v.outcome.trailing ?? Buffer.alloc(0));
        } else {
          expect(last?.type, name).toBe('failed');
          if (last?.type === 'failed') expect(last.error.code).toBe(v.outcome.failed);
        }
      }
    });
  }

  it('every public reason is ASCII, so stock noVNC (Latin-1 decoding) shows it intact', async () => {
    const { ERROR_CODES } = await import('../../src/errors.js');
    for (const [code, { reason }] of Object.entries(ERROR_CODES)) {
      expect(/^[\x20-\x7e]+$/.test(reason), code).toBe(true);
      expect(reason.length).toBeLessThanOrEqual(256);
    }
  });
});

describe('RfbServerHandshake misuse', () => {
  it('throws on our own misuse, never on peer input', () => {
    const e = new RfbServerHandshake();
    expect(() => e.receive(Buffer.alloc(1))).toThrow();
    e.start();
    expect(() => e.start()).toThrow();
    e.accept();
    expect(() => e.accept()).toThrow();
    expect(() => new RfbServerHandshake({ security: ['vncauth'] })).toThrow(TypeError);
  });

  it('bounds what a client can make it buffer', () => {
    const e = new RfbServerHandshake({ security: ['none'] });
    e.start();
    // A 3.7 client waiting for the verdict keeps sending.
    e.receive(hex`"RFB 003.007\\n"`);
    let failed = false;
    for (let i = 0; i < 100 && !failed; i++) {
      failed = e.receive(Buffer.alloc(1024)).some((a) => a.type === 'failed');
    }
    expect(failed).toBe(true);
    expect(e.bufferedBytes).toBe(0);
  });
});
