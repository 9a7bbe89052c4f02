import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NovaApiLookup } from '../../src/nova/index.js';

/** A Nova API that takes the request and never answers. */
let hanging: Server;
let hangingUrl: string;
/** A port nobody listens on (bound, noted, closed). */
let closedUrl: string;
beforeAll(async () => {
  hanging = createServer(() => undefined);
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
  hangingUrl = `http://127.0.0.1:${(hanging.address() as { port: number }).port}/v2.1`;
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(gone.address() as { port: number }).port}/v2.1`;
  await new Promise<void>((r) => gone.close(() => r()));
});
afterAll(async () => {
  hanging.closeAllConnections();
  await new Promise<void>((r) => hanging.close(() => r()));
});

async function failure(url: string, token: string): Promise<Error & { code?: string }> {
  const lookup = new NovaApiLookup({ url, auth: { type: 'noauth' }, timeoutMs: 200, retries: 0 });
  return lookup.lookup(token, new AbortController().signal).then(
    () => {
      throw new Error('the lookup should have failed');
    },
    (err: Error & { code?: string }) => err,
  );
}

describe('Nova API token lookup failures', () => {
  it('a timeout names the Nova endpoint, never the console token in its path', async () => {
    const token = randomUUID();
    const err = await failure(hangingUrl, token);
    expect(err.code).toBe('NOVA_ERR_TIMEOUT');
    expect(err.message).toContain('os-console-auth-tokens');
    expect(err.message).not.toContain(token);
  });

  it('an unreachable Nova names the endpoint, never the console token in its path', async () => {
    const token = randomUUID();
    const err = await failure(closedUrl, token);
    expect(err.code).toBe('NOVA_ERR_UNREACHABLE');
    expect(err.message).not.toContain(token);
  });
});
