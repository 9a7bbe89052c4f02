import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NovaApiLookup } from '../../src/nova/index.js';
import { retryDelayMs } from '../../src/openstack/index.js';

/**
 * Retries of the Nova API lookup back off as the Ironic client's do (200 ms, doubling), and a
 * session that ends during the pause ends the lookup there. A Nova that fails a given number of
 * times with 503, then answers as real Nova did (the recorded fixture).
 */
type Fixture = { request: { path: string }; response: { status: number; body: unknown } };
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'token-2.31-200-novnc.json'), 'utf8')) as Fixture;
const token = fixture.request.path.split('/').pop()!;

let failuresLeft = 0;
let arrivals: number[] = [];
let nova: Server;
let url: string;
beforeAll(async () => {
  nova = createServer((_req, res) => {
    arrivals.push(performance.now());
    if (failuresLeft-- > 0) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"computeFault":{"code":503}}');
    res.writeHead(fixture.response.status, { 'content-type': 'application/json' }).end(JSON.stringify(fixture.response.body));
  });
  await new Promise<void>((r) => nova.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(nova.address() as { port: number }).port}/v2.1`;
});
afterAll(async () => {
  await new Promise<void>((r) => nova.close(() => r()));
});

const lookup = (signal: AbortSignal) => new NovaApiLookup({ url, auth: { type: 'noauth' }, timeoutMs: 2_000, retries: 2 }).lookup(token, signal);

describe('Nova API token lookup retries', () => {
  it('waits before each retry, longer each time (a lower bound: timers never fire early)', async () => {
    failuresLeft = 2;
    arrivals = [];
    await expect(lookup(new AbortController().signal)).resolves.toMatchObject({ host: '127.0.0.1' });
    expect(arrivals).toHaveLength(3);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(retryDelayMs(1) - 5);
    expect(arrivals[2]! - arrivals[1]!).toBeGreaterThanOrEqual(retryDelayMs(2) - 5);
    expect(retryDelayMs(2)).toBeGreaterThan(retryDelayMs(1));
  });

  it('a lookup aborted during the pause ends as SESSION_ERR_SHUTDOWN without asking Nova again', async () => {
    failuresLeft = 5;
    arrivals = [];
    const ac = new AbortController();
    const p = lookup(ac.signal);
    for (let i = 0; i < 200 && arrivals.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'SESSION_ERR_SHUTDOWN' });
    expect(arrivals).toHaveLength(1);
  });
});
