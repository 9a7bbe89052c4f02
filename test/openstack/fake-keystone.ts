import { createServer, type Server, type ServerResponse } from 'node:http';

/**
 * An in-process Keystone v3 answering `POST /v3/auth/tokens` for one application credential the
 * way real Keystone does: 201 with the token in X-Subject-Token and the catalog in the body, 401
 * for a wrong secret. Tokens it issued are valid until `revokeAll()`; the fake Ironic or Nova in a
 * test checks them with `isValid`. `failNext` makes the next answers a status or no answer at all.
 */
export type CatalogEntry = { type: string; endpoints: { interface: string; region: string; url: string }[] };

export type FakeKeystone = {
  /** The auth URL as operators write it, ending in /v3. */
  authUrl: string;
  /** Token requests answered so far (successful or not). */
  requests: number;
  /** Tokens issued so far. */
  issued: number;
  catalog: CatalogEntry[];
  isValid: (token: unknown) => boolean;
  revokeAll: () => void;
  failNext: (n: number, what: number | 'hang' | 'no-token') => void;
  close: () => Promise<void>;
};

export const APP_CRED = { id: 'app-id', secret: 'appsecret' } as const;

export async function startFakeKeystone(catalog: CatalogEntry[]): Promise<FakeKeystone> {
  let valid = new Set<string>();
  let failures: { n: number; what: number | 'hang' | 'no-token' } = { n: 0, what: 500 };
  const hung: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      ks.requests++;
      let noToken = false;
      if (failures.n > 0) {
        failures.n--;
        if (failures.what === 'hang') return void hung.push(res);
        if (typeof failures.what === 'number') return void res.writeHead(failures.what, { 'content-type': 'application/json' }).end('{"error":{}}');
        noToken = true;
      }
      const auth = (JSON.parse(body) as { auth: { identity: { application_credential?: { id: string; secret: string } } } }).auth;
      const cred = auth.identity.application_credential;
      if (req.url !== '/v3/auth/tokens' || cred?.id !== APP_CRED.id || cred.secret !== APP_CRED.secret) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":401,"title":"Unauthorized"}}');
        return;
      }
      const token = `tok-${++ks.issued}`;
      valid.add(token);
      res
        .writeHead(201, { ...(noToken ? {} : { 'x-subject-token': token }), 'content-type': 'application/json' })
        .end(JSON.stringify({ token: { expires_at: new Date(Date.now() + 3_600_000).toISOString(), catalog: ks.catalog } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const ks: FakeKeystone = {
    authUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}/v3`,
    requests: 0,
    issued: 0,
    catalog,
    isValid: (t) => typeof t === 'string' && valid.has(t),
    revokeAll: () => {
      valid = new Set();
    },
    failNext: (n, what) => {
      failures = { n, what };
    },
    close: async () => {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return ks;
}
