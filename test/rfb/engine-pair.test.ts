import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  RfbClientHandshake,
  RfbServerHandshake,
  type ClientAction,
  type ClientHandshakeOptions,
  type ServerAction,
  type ServerHandshakeOptions,
} from '../../src/rfb/index.js';
import { VncgateError } from '../../src/errors.js';

type Result = { client: ClientAction | undefined; server: ServerAction | undefined };

/**
 * Runs both engines against each other in memory, delivering each side's sends to the other in
 * chunks of `chunk` bytes, until both have settled (bounded by a step count).
 */
function pair(copts: ClientHandshakeOptions, sopts: ServerHandshakeOptions, verdict: 'accept' | VncgateError, chunk = 1 << 20): Result {
  const client = new RfbClientHandshake(copts);
  const server = new RfbServerHandshake(sopts);
  let toClient: Buffer[] = [];
  let toServer: Buffer[] = [];
  const result: Result = { client: undefined, server: undefined };
  const fromServer = (as: ServerAction[]): void => {
    for (const a of as) (a.type === 'send' ? toClient.push(a.bytes) : (result.server = a));
  };
  const fromClient = (as: ClientAction[]): void => {
    for (const a of as) (a.type === 'send' ? toServer.push(a.bytes) : (result.client = a));
  };
  fromServer(server.start());
  fromServer(verdict === 'accept' ? server.accept() : server.reject(verdict));
  for (let steps = 0; steps < 10_000 && (toClient.length > 0 || toServer.length > 0); steps++) {
    const c = Buffer.concat(toClient);
    toClient = [];
    for (let i = 0; i < c.length && result.client === undefined; i += chunk) fromClient(client.receive(c.subarray(i, i + chunk)));
    const s = Buffer.concat(toServer);
    toServer = [];
    for (let i = 0; i < s.length && result.server === undefined; i += chunk) fromServer(server.receive(s.subarray(i, i + chunk)));
  }
  return result;
}

describe('client engine ⇄ server engine', () => {
  for (const chunk of [1, 3, 1 << 20]) {
    it(`None end to end (chunks of ${chunk})`, () => {
      const r = pair({ security: ['none'] }, { security: ['none'] }, 'accept', chunk);
      expect(r.client).toMatchObject({ type: 'established', info: { security: 'none', version: '3.8' } });
      expect(r.server).toMatchObject({ type: 'established', info: { security: 'none', version: '3.8' } });
    });

    it(`VncAuth end to end (chunks of ${chunk})`, () => {
      const r = pair(
        { security: ['vncauth', 'none'], password: Buffer.from('hunter22') },
        { security: ['none', 'vncauth'], password: Buffer.from('hunter22'), randomBytes },
        'accept',
        chunk,
      );
      expect(r.client).toMatchObject({ type: 'established', info: { security: 'vncauth' } });
      expect(r.server).toMatchObject({ type: 'established', info: { security: 'vncauth' } });
    });
  }

  it('a wrong VNC password fails on both sides with the right codes', () => {
    const r = pair(
      { security: ['vncauth'], password: Buffer.from('wrong') },
      { security: ['vncauth'], password: Buffer.from('right'), randomBytes },
      'accept',
    );
    expect(r.client).toMatchObject({ type: 'failed', error: { code: 'RFB_ERR_AUTH_FAILED', details: { serverReason: 'Authentication failed' } } });
    expect(r.server).toMatchObject({ type: 'failed', error: { code: 'RFB_ERR_CLIENT_AUTH' } });
  });

  it("a rejection's public reason reaches the client", () => {
    const r = pair({ security: ['none'] }, { security: ['none'] }, new VncgateError('BACKEND_ERR_REFUSED', 'ECONNREFUSED 10.0.0.1:5900'));
    expect(r.client).toMatchObject({ type: 'failed', error: { code: 'RFB_ERR_AUTH_FAILED' } });
    if (r.client?.type !== 'failed') throw new Error('unreachable');
    expect(r.client.error.details).toEqual({ serverReason: 'The console endpoint is unreachable' });
    // Internal detail never crosses the wire.
    expect(JSON.stringify(r.client.error.details)).not.toContain('10.0.0.1');
  });

  it('a client wanting only VncAuth refuses a server offering only None', () => {
    const r = pair({ security: ['vncauth'], password: Buffer.from('x') }, { security: ['none'] }, 'accept');
    expect(r.client).toMatchObject({ type: 'failed', error: { code: 'RFB_ERR_NO_COMMON_SECURITY' } });
  });
});
