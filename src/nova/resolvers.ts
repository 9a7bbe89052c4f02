import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { VncgateError } from '../errors.js';
import { parseCellDbUrl, type CellDb } from '../config/index.js';
import { timed, type UpstreamObserver } from '../observe/upstream.js';
import { abortableSleep, httpJson, isKeystoneTransient, retryDelayMs, isTransportFailure, parseJsonBody, type HttpResponse, type KeystoneSession, type OpenStackService } from '../openstack/index.js';

/** How the OpenStack client names Nova's API: its metric label and failure codes. */
const NOVA: OpenStackService = { service: 'nova', unreachable: 'NOVA_ERR_UNREACHABLE', timeout: 'NOVA_ERR_TIMEOUT', badResponse: 'NOVA_ERR_BAD_RESPONSE' };

/** Nova console tokens are UUID4 strings (nova/objects/console_auth_token.py authorize()). */
const NOVA_TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isNovaToken(token: string): boolean {
  return NOVA_TOKEN.test(token);
}

/** What Nova stores: sha256 hex of the token's UTF-8 bytes (nova/utils.py get_sha256_str). */
export function novaTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A valid Nova console token's connection facts. Fields the API does not return are null. */
export type NovaConsole = {
  instanceUuid: string;
  host: string;
  port: number;
  internalAccessPath: string | null;
  /** `novnc`, `spice-html5`, … — only the database says (the REST API omits it). */
  consoleType: string | null;
  /** Unix seconds; only the database says. */
  expires: number | null;
};

export interface NovaTokenLookup {
  /** The token's console, or TOKEN_ERR_INVALID for unknown/expired tokens. */
  lookup(token: string, signal: AbortSignal): Promise<NovaConsole>;
  close(): Promise<void>;
}

/** `v` as a TCP port (an integer 1..65535, or its decimal digits), else null. */
function tcpPort(v: number | string): number | null {
  const n = typeof v === 'number' ? v : /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
}

export type NovaApiAuth = { type: 'noauth' } | { type: 'keystone'; session: KeystoneSession };

/** Microversion for GET /os-console-auth-tokens/{token}: 2.31 is the first that accepts noVNC tokens. */
export const NOVA_MICROVERSION = '2.31';

/**
 * Token lookup through Nova's admin API, `GET /os-console-auth-tokens/{token}` (≥ 2.31): 200 with
 * `{"console": {instance_uuid, host, port, internal_access_path}}`, 404 for unknown and expired.
 */
type NovaApiOptions = { url: string | null; auth: NovaApiAuth; ca?: Buffer; timeoutMs: number; retries: number; observe?: UpstreamObserver | undefined };

export class NovaApiLookup implements NovaTokenLookup {
  readonly #opts: NovaApiOptions;

  constructor(opts: NovaApiOptions) {
    if (opts.url === null && opts.auth.type !== 'keystone') throw new VncgateError('CONFIG_ERR_INVALID', 'nova.url is required without Keystone');
    this.#opts = opts;
  }

  async lookup(token: string, signal: AbortSignal): Promise<NovaConsole> {
    const o = this.#opts;
    let last: unknown;
    for (let attempt = 0; attempt <= o.retries; attempt++) {
      // Back off as the Ironic client does: a Nova API that just failed is given a moment.
      if (attempt > 0) await abortableSleep(retryDelayMs(attempt), signal);
      try {
        const send = (base: string, authToken: string): Promise<HttpResponse> =>
          httpJson({
            method: 'GET',
            url: `${base.replace(/\/+$/, '')}/os-console-auth-tokens/${encodeURIComponent(token)}`,
            // Failures name the endpoint, never the console token (the logs' scrubber is a backstop, not the rule).
            pathForErrors: `${new URL(base).pathname.replace(/\/+$/, '')}/os-console-auth-tokens/[redacted]`,
            headers: { 'X-OpenStack-Nova-API-Version': NOVA_MICROVERSION, 'X-Auth-Token': authToken },
            timeoutMs: o.timeoutMs,
            ...(o.ca ? { ca: o.ca } : {}),
            signal,
            to: NOVA,
            observe: o.observe,
          });
        const res =
          o.auth.type === 'keystone'
            ? await o.auth.session.authorized((t) => send(o.url ?? t.endpoint, t.token))
            : // Nova's noauth2 middleware: "user:project"; admin:admin is an admin under its test policy.
              await send(o.url!, 'admin:admin');
        if (res.status === 404) throw invalid('Nova does not know this console token (unknown or expired)');
        if (res.status === 401 || res.status === 403) throw new VncgateError('NOVA_ERR_AUTH', `Nova refused the token lookup (HTTP ${res.status}); vncgate's user needs the admin role`);
        if (res.status >= 500) {
          last = new VncgateError('NOVA_ERR_SERVER', `Nova answered ${res.status}`);
          continue;
        }
        if (res.status !== 200) throw new VncgateError('NOVA_ERR_BAD_RESPONSE', `Nova answered ${res.status} to the token lookup`);
        const c = (parseJsonBody(res, 'console auth token', NOVA) as { console?: Record<string, unknown> }).console;
        if (!c || typeof c.host !== 'string' || (typeof c.port !== 'number' && typeof c.port !== 'string') || typeof c.instance_uuid !== 'string') {
          throw new VncgateError('NOVA_ERR_BAD_RESPONSE', 'console auth token without host/port/instance_uuid');
        }
        const port = tcpPort(c.port);
        if (port === null) throw new VncgateError('NOVA_ERR_BAD_RESPONSE', `console auth token with a port that is not a TCP port: ${JSON.stringify(String(c.port).slice(0, 16))}`);
        return {
          instanceUuid: c.instance_uuid,
          host: c.host,
          port,
          internalAccessPath: typeof c.internal_access_path === 'string' && c.internal_access_path !== '' ? c.internal_access_path : null,
          consoleType: null,
          expires: null,
        };
      } catch (err) {
        last = err;
        const retry = isTransportFailure(err, NOVA) || isKeystoneTransient(err);
        if (!retry || attempt >= o.retries) throw err;
      }
    }
    throw last;
  }

  async close(): Promise<void> {}
}

type Row = {
  instance_uuid: string;
  host: string;
  port: number | string;
  internal_access_path: string | null;
  console_type: string;
  expires: number | string;
};

interface CellQuery {
  query(hash: string, now: number): Promise<Row | null>;
  close(): Promise<void>;
  label: string;
}

const SQL_MYSQL =
  'SELECT instance_uuid, host, port, internal_access_path, console_type, expires FROM console_auth_tokens WHERE token_hash = ? AND expires > ? LIMIT 1';
const SQL_PG =
  'SELECT instance_uuid, host, port, internal_access_path, console_type, expires FROM console_auth_tokens WHERE token_hash = $1 AND expires > $2 LIMIT 1';

/** A cell database, parsed from a SQLAlchemy-style URL into driver options. */
/** For messages: the database URL's engine, host and name, never its credentials. */
export function describeCellDb(db: CellDb): string {
  return `${db.kind}://${db.socket ?? `${db.host ?? 'localhost'}${db.port ? `:${db.port}` : ''}`}/${db.database ?? ''}`;
}

function tlsOptions(db: CellDb): { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean } | undefined {
  if (!db.tls) return undefined;
  return {
    ...(db.tls.ca ? { ca: readFileSync(db.tls.ca) } : {}),
    ...(db.tls.cert ? { cert: readFileSync(db.tls.cert) } : {}),
    ...(db.tls.key ? { key: readFileSync(db.tls.key) } : {}),
    rejectUnauthorized: true,
  };
}

async function mysqlCell(db: CellDb, timeoutMs: number): Promise<CellQuery> {
  const mysql = await import('mysql2/promise');
  const ssl = tlsOptions(db);
  const pool = mysql.createPool({
    ...(db.socket ? { socketPath: db.socket } : { host: db.host ?? 'localhost', port: db.port ?? 3306 }),
    ...(db.user !== null ? { user: db.user } : {}),
    ...(db.password !== null ? { password: db.password } : {}),
    ...(db.database !== null ? { database: db.database } : {}),
    ...(ssl ? { ssl } : {}),
    connectionLimit: 4,
    connectTimeout: timeoutMs,
    enableKeepAlive: true,
  });
  return {
    label: describeCellDb(db),
    async query(hash, now) {
      const [rows] = await pool.query({ sql: SQL_MYSQL, timeout: timeoutMs, values: [hash, now] });
      return (rows as Row[])[0] ?? null;
    },
    close: () => pool.end(),
  };
}

async function pgCell(db: CellDb, timeoutMs: number): Promise<CellQuery> {
  const { default: pg } = await import('pg');
  const ssl = tlsOptions(db);
  const pool = new pg.Pool({
    host: db.socket ?? db.host ?? 'localhost',
    ...(db.port !== null ? { port: db.port } : {}),
    ...(db.user !== null ? { user: db.user } : {}),
    ...(db.password !== null ? { password: db.password } : {}),
    ...(db.database !== null ? { database: db.database } : {}),
    ...(ssl ? { ssl } : {}),
    max: 4,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  pool.on('error', () => undefined); // idle client errors surface on the next query instead
  return {
    label: describeCellDb(db),
    async query(hash, now) {
      const r = await pool.query<Row>(SQL_PG, [hash, now]);
      return r.rows[0] ?? null;
    },
    close: () => pool.end(),
  };
}

/**
 * Token lookup straight from the cell databases, as nova-novncproxy does: the row whose
 * `token_hash` is sha256(token) and whose `expires` is in the future, from any cell. All cells are
 * asked at once; the first row found wins without waiting for slower (or sick) cells.
 */
export class NovaDbLookup implements NovaTokenLookup {
  readonly #cells: Promise<CellQuery>[];
  readonly #now: () => number;
  readonly #observe: UpstreamObserver | undefined;

  constructor(urls: readonly string[], timeoutMs: number, now: () => number = () => Math.floor(Date.now() / 1000), observe?: UpstreamObserver) {
    this.#now = now;
    this.#observe = observe;
    this.#cells = urls.map((u) => {
      const db = parseCellDbUrl(u);
      return db.kind === 'mysql' ? mysqlCell(db, timeoutMs) : pgCell(db, timeoutMs);
    });
    for (const c of this.#cells) c.catch(() => undefined);
  }

  lookup(token: string, signal?: AbortSignal): Promise<NovaConsole> {
    const hash = novaTokenHash(token);
    const now = this.#now();
    return new Promise<NovaConsole>((resolve, reject) => {
      let pending = this.#cells.length;
      let done = false;
      const failures: unknown[] = [];
      const onAbort = (): void => finish(() => reject(new VncgateError('SESSION_ERR_SHUTDOWN', 'token lookup aborted')));
      function finish(f: () => void): void {
        if (done) return;
        done = true;
        signal?.removeEventListener('abort', onAbort);
        f();
      }
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle = (): void => {
        if (--pending > 0) return;
        // A miss is only a miss when every cell answered; otherwise the token may be in a silent one.
        if (failures.length > 0) {
          const first = failures[0] as Error;
          finish(() =>
            reject(new VncgateError('NOVA_ERR_DB', `${failures.length} of ${this.#cells.length} cell database(s) failed: ${first?.message ?? String(first)}`, { cause: first })),
          );
        } else finish(() => reject(invalid('no valid console_auth_tokens row for this token (unknown or expired)')));
      };
      for (const cell of this.#cells) {
        cell
          .then((c) => timed(this.#observe, 'nova_db', () => c.query(hash, now)))
          .then(
            (row) => {
              if (row) finish(() => resolve(toConsole(row)));
              else settle();
            },
            (err: unknown) => {
              failures.push(err);
              settle();
            },
          );
      }
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.#cells.map(async (c) => (await c).close()));
  }
}

function toConsole(row: Row): NovaConsole {
  return {
    instanceUuid: row.instance_uuid,
    host: row.host,
    port: Number(row.port),
    internalAccessPath: row.internal_access_path || null,
    consoleType: row.console_type,
    expires: Number(row.expires),
  };
}

/** Kept for callers that want just the engine and a driver URL (tests, messages). */
export function plainDbUrl(url: string): { kind: 'mysql' | 'postgres'; url: string } {
  const db = parseCellDbUrl(url);
  const auth = db.user !== null ? `${encodeURIComponent(db.user)}${db.password !== null ? `:${encodeURIComponent(db.password)}` : ''}@` : '';
  const host = db.host !== null && db.host.includes(':') ? `[${db.host}]` : (db.host ?? 'localhost');
  return { kind: db.kind, url: `${db.kind}://${auth}${host}${db.port ? `:${db.port}` : ''}/${db.database ?? ''}` };
}

function invalid(message: string): VncgateError {
  return new VncgateError('TOKEN_ERR_INVALID', message);
}
