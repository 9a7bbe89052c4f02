import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NovaApiLookup } from '../../src/nova/index.js';

/**
 * The console port Nova's API returns is checked: real Nova's answer (the recorded fixture) with its
 * `port` replaced. A port that is not a TCP port is Nova's bad answer (NOVA_ERR_BAD_RESPONSE), not
 * a NaN that fails later as an internal error.
 */
type Fixture = { request: { path: string }; response: { status: number; body: { console: Record<string, unknown> } } };
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'token-2.31-200-novnc.json'), 'utf8')) as Fixture;
const token = fixture.request.path.split('/').pop()!;

/** What the next answer's `port` is; `undefined` leaves the recorded one. */
let port: unknown;
let nova: Server;
let url: string;
beforeAll(async () => {
  nova = createServer((req, res) => {
    const body = structuredClone(fixture.response.body);
    if (port !== undefined) body.console['port'] = port;
    res.writeHead(fixture.response.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => nova.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(nova.address() as { port: number }).port}/v2.1`;
});
afterAll(async () => {
  await new Promise<void>((r) => nova.close(() => r()));
});

function lookup(): Promise<{ port: number }> {
  return new NovaApiLookup({ url, auth: { type: 'noauth' }, timeoutMs: 2_000, retries: 0 }).lookup(token, new AbortController().signal);
}

describe("Nova API token lookup: the console's port", () => {
  it("takes real Nova's recorded answer as it is, and a port sent as decimal digits", async () => {
    port = undefined;
    expect(await lookup()).toMatchObject({ port: fixture.response.body.console['port'] });
    port = '5901';
    expect(await lookup()).toMatchObject({ port: 5901 });
  });

  it.each([['abc'], [''], ['59 01'], ['0x10'], ['1e3'], [0], [65536], [-1], [5900.5], ['70000']])('refuses port %j as NOVA_ERR_BAD_RESPONSE', async (bad) => {
    port = bad;
    await expect(lookup()).rejects.toMatchObject({ code: 'NOVA_ERR_BAD_RESPONSE' });
  });
});
