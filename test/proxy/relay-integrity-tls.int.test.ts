import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { getTestPki, type TestPki } from '../support/pki.js';
import { streamWithStalls } from '../support/relay-integrity.js';

/**
 * Over wss the receive buffer is reused on a different rule than over ws (a frame handed to an
 * idle TLS socket is encrypted or copied before send() returns; see ConsoleSession): the same
 * byte-exact stream with a stalling client, through a real TLS front end.
 */
const tokens = new MemoryTokenStore();
let pki: TestPki;
let srv: VncgateServer;

beforeAll(async () => {
  pki = await getTestPki();
  const config = loadConfig({
    env: {},
    overrides: {
      listen: ['127.0.0.1:0'],
      tls: { certFile: pki.server.cert.path, keyFile: pki.server.key.path },
      session: { highWaterMarkBytes: 256 * 1024 },
      backends: { allowedTargets: ['127.0.0.0/8', '::1/128'] },
      log: { level: 'silent' },
    },
  });
  srv = await buildServer({ config, tokens, log: createLogger({ level: 'silent' }) });
});
afterAll(async () => srv?.close());

describe('relay integrity over wss', () => {
  it('every byte arrives intact while the receive buffer is reused and while the browser stalls', async () => {
    const r = await streamWithStalls(srv, tokens, { scheme: 'wss', ca: pki.ca.cert.pem });
    expect(r.mismatchAt).toBe(-1);
    expect(r.checked).toBeGreaterThan(8 * 1024 * 1024);
    expect(r.sawQueue).toBe(true);
    expect(r.reads?.reused).toBeGreaterThan(10);
    expect(r.reads?.allocated).toBeGreaterThan(1);
  });
});
