import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';

/**
 * An in-process Ironic API for unit tests of the client, answering with the shapes the real
 * Ironic 29 (2025.1) returns (see test/ironic/fixtures and shared/reference): console state,
 * asynchronous enable (202, then enabled after `enableDelayMs`), node fields with
 * driver_internal_info, and Ironic's error bodies. It records every request for assertions.
 */
export type FakeNode = {
  uuid: string;
  name: string | null;
  driver: string;
  consoleInterface: string;
  consoleEnabled: boolean;
  /** "vnc" for graphical interfaces, "socat" for ipmitool-socat; no-console refuses. */
  consoleType: 'vnc' | 'socat' | null;
  vncHost: string | null;
  vncPort: number | null;
  token: string;
};

export type RecordedRequest = { method: string; url: string; headers: IncomingMessage['headers']; body: string };

export type FakeIronic = {
  url: string;
  nodes: Map<string, FakeNode>;
  requests: RecordedRequest[];
  /** Next N responses to any request are this status (5xx tests), or never answered ('hang'). */
  failNext: (n: number, status: number | 'hang') => void;
  addNode: (n: Partial<FakeNode>) => FakeNode;
  close: () => Promise<void>;
};

const PUBLIC_URL = 'http://127.0.0.1:6090/vnc_lite.html';

export function ironicError(faultstring: string): string {
  return JSON.stringify({ error_message: JSON.stringify({ faultcode: 'Client', faultstring, debuginfo: null }) });
}

export async function startFakeIronic(opts: { enableDelayMs?: number; requireAuth?: (h: IncomingMessage['headers']) => boolean } = {}): Promise<FakeIronic> {
  const nodes = new Map<string, FakeNode>();
  const requests: RecordedRequest[] = [];
  let failures: { n: number; status: number | 'hang' } = { n: 0, status: 500 };
  const hung: ServerResponse[] = [];

  const find = (ident: string): FakeNode | undefined => nodes.get(ident) ?? [...nodes.values()].find((n) => n.name === ident);
  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-openstack-ironic-api-minimum-version': '1.1',
      'x-openstack-ironic-api-maximum-version': '1.96',
      ...headers,
    });
    res.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  };

  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (failures.n > 0) {
        failures.n--;
        if (failures.status === 'hang') {
          hung.push(res);
          return;
        }
        return send(res, failures.status, ironicError('Internal Server Error'));
      }
      if (opts.requireAuth && !opts.requireAuth(req.headers)) return send(res, 401, ironicError('Authentication required'));
      const u = new URL(req.url ?? '/', 'http://fake');
      const m = /^\/v1\/nodes\/([^/]+)(\/states\/console)?$/.exec(u.pathname);
      if (!m) return send(res, 404, ironicError('Not found'));
      const node = find(decodeURIComponent(m[1]!));
      if (!node) return send(res, 404, ironicError(`Node ${m[1]} could not be found.`));
      if (m[2]) {
        if (node.consoleType === null) {
          // As real Ironic 29: a no-console node reads as disabled; enabling it is a 400.
          if (req.method === 'GET') return send(res, 200, { console_enabled: false, console_info: null });
          return send(res, 400, ironicError(`Driver ${node.driver} does not support console (disabled or not implemented).`));
        }
        if (req.method === 'GET') {
          if (!node.consoleEnabled) return send(res, 200, { console_enabled: false, console_info: null });
          const info =
            node.consoleType === 'vnc'
              ? { type: 'vnc', url: `${PUBLIC_URL}?path=${encodeURIComponent(`websockify?node=${node.uuid}&token=${node.token}`)}` }
              : { type: 'socat', url: 'tcp://127.0.0.1:8023' };
          return send(res, 200, { console_enabled: true, console_info: info });
        }
        if (req.method === 'PUT') {
          const enabled = (JSON.parse(body || '{}') as { enabled?: unknown }).enabled;
          if (typeof enabled !== 'boolean') return send(res, 400, ironicError('Invalid parameter enabled'));
          if (enabled !== node.consoleEnabled) {
            setTimeout(() => {
              node.consoleEnabled = enabled;
              // Every enable issues a new token; the old one is void.
              if (enabled) node.token = randomBytes(32).toString('base64url');
            }, opts.enableDelayMs ?? 50);
          }
          return send(res, 202, undefined, { location: `http://fake/v1/nodes/${m[1]}/states/console` });
        }
        return send(res, 405, ironicError('Method not allowed'));
      }
      return send(res, 200, {
        uuid: node.uuid,
        name: node.name,
        driver: node.driver,
        console_interface: node.consoleInterface,
        console_enabled: node.consoleEnabled,
        last_error: null,
        driver_internal_info: {
          ...(node.vncHost !== null ? { vnc_host: node.vncHost } : {}),
          ...(node.vncPort !== null ? { vnc_port: node.vncPort } : {}),
          ...(node.consoleEnabled ? { novnc_secret_token: '******', novnc_secret_token_created: '******' } : {}),
        },
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    nodes,
    requests,
    failNext: (n, status) => {
      failures = { n, status };
    },
    addNode: (n) => {
      const node: FakeNode = {
        uuid: randomUUID(),
        name: null,
        driver: 'fake-hardware',
        consoleInterface: 'fake-graphical',
        consoleEnabled: true,
        consoleType: 'vnc',
        vncHost: '127.0.0.1',
        vncPort: 5901,
        token: randomBytes(32).toString('base64url'),
        ...n,
      };
      nodes.set(node.uuid, node);
      return node;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const res of hung) res.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
