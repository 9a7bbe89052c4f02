import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log.js';
import { NovaDbLookup, createNova, novaTokenHash, type NovaConsole, type NovaTokenLookup } from '../../src/nova/index.js';
import { buildServer, type VncgateServer } from '../../src/proxy/server.js';
import { MemoryTokenStore } from '../../src/tokens/index.js';
import { startMariadb, startPostgres, type TestDatabase } from '../support/databases.js';
import { stopAll } from '../support/proc.js';
import { startTinyVncServer } from '../support/tiny-vnc-server.js';
import { wsRfbConnect } from '../support/ws-rfb-client.js';

/**
 * Nova tokens looked up in real cell databases (MariaDB 10.11 and PostgreSQL 15), with the
 * `console_auth_tokens` table as Nova's cell schema defines it and rows written the way
 * `ConsoleAuthToken.authorize()` writes them (reference openstack-consoles.md D.3, D.4), then
 * through the proxy with the URLs noVNC opens for Nova (E.2).
 */

/** A cell database: one database on one of the servers. */
type Cell = { db: TestDatabase; database: string; url: string };

// Nova model nova/db/main/models.py ConsoleAuthToken; MySQL: InnoDB, utf8 (utf8mb3).
const DDL_MYSQL = [
  `CREATE TABLE console_auth_tokens (
    created_at DATETIME NULL,
    updated_at DATETIME NULL,
    id INT NOT NULL AUTO_INCREMENT,
    token_hash VARCHAR(255) NOT NULL,
    console_type VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    port INT NOT NULL,
    tls_port INT NULL,
    internal_access_path VARCHAR(255) NULL,
    instance_uuid VARCHAR(36) NOT NULL,
    expires INT NOT NULL,
    access_url_base VARCHAR(255) NULL,
    PRIMARY KEY (id),
    CONSTRAINT uniq_console_auth_tokens0token_hash UNIQUE (token_hash),
    INDEX console_auth_tokens_instance_uuid_idx (instance_uuid),
    INDEX console_auth_tokens_host_expires_idx (host, expires),
    INDEX console_auth_tokens_token_hash_instance_uuid_idx (token_hash, instance_uuid)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3`,
];

const DDL_PG = [
  `CREATE TABLE console_auth_tokens (
    created_at TIMESTAMP WITHOUT TIME ZONE NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NULL,
    id SERIAL NOT NULL,
    token_hash VARCHAR(255) NOT NULL,
    console_type VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    port INTEGER NOT NULL,
    tls_port INTEGER NULL,
    internal_access_path VARCHAR(255) NULL,
    instance_uuid VARCHAR(36) NOT NULL,
    expires INTEGER NOT NULL,
    access_url_base VARCHAR(255) NULL,
    PRIMARY KEY (id),
    CONSTRAINT uniq_console_auth_tokens0token_hash UNIQUE (token_hash)
  )`,
  'CREATE INDEX console_auth_tokens_instance_uuid_idx ON console_auth_tokens (instance_uuid)',
  'CREATE INDEX console_auth_tokens_host_expires_idx ON console_auth_tokens (host, expires)',
  'CREATE INDEX console_auth_tokens_token_hash_instance_uuid_idx ON console_auth_tokens (token_hash, instance_uuid)',
];

async function createCell(db: TestDatabase, database: string): Promise<Cell> {
  const url = await db.createDatabase(database);
  for (const sql of db.engine === 'mariadb' ? DDL_MYSQL : DDL_PG) await db.query(sql, [], database);
  return { db, database, url };
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

type AuthorizeOptions = {
  /** [consoleauth] token_ttl; default 600. */
  ttl?: number;
  /** Absolute expiry (epoch seconds) instead of now + ttl. */
  expires?: number;
  consoleType?: string;
  host?: string;
  port?: number;
  instanceUuid?: string;
};

/**
 * What `ConsoleAuthToken.authorize(ttl)` does: a random UUID4 token, its sha256 hex stored as
 * `token_hash`, `expires` = utcnow_ts() + ttl (integer seconds), the raw token never stored;
 * `created_at` from the model's timestamp mixin, `updated_at`/`tls_port`/`internal_access_path`
 * NULL for a noVNC console of an Ironic node.
 */
async function authorize(cell: Cell, o: AuthorizeOptions = {}): Promise<{ token: string; instanceUuid: string; expires: number }> {
  const token = randomUUID();
  const instanceUuid = o.instanceUuid ?? randomUUID();
  const expires = o.expires ?? nowSeconds() + (o.ttl ?? 600);
  const values = [novaTokenHash(token), o.consoleType ?? 'novnc', o.host ?? '127.0.0.1', o.port ?? vnc.port, instanceUuid, expires, 'http://127.0.0.1:6080/vnc_lite.html'];
  const columns = 'created_at, updated_at, token_hash, console_type, host, port, tls_port, internal_access_path, instance_uuid, expires, access_url_base';
  const sql =
    cell.db.engine === 'mariadb'
      ? `INSERT INTO console_auth_tokens (${columns}) VALUES (UTC_TIMESTAMP(), NULL, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)`
      : `INSERT INTO console_auth_tokens (${columns}) VALUES (now() AT TIME ZONE 'utc', NULL, $1, $2, $3, $4, NULL, NULL, $5, $6, $7)`;
  await cell.db.query(sql, values, cell.database);
  return { token, instanceUuid, expires };
}

/** `mysql://…` → the SQLAlchemy form Nova's [database] connection uses. */
const pymysql = (url: string): string => `${url.replace(/^mysql:/, 'mysql+pymysql:')}?charset=utf8`;

const never = new AbortController().signal;
const TIMEOUT_MS = 1_500;

let maria: TestDatabase;
let pg: TestDatabase;
let vnc: Awaited<ReturnType<typeof startTinyVncServer>>;
let cell1: Cell; // MariaDB nova_cell1
let cell2: Cell; // MariaDB nova_cell2
let cellPg: Cell; // PostgreSQL nova_cell1
const lookups: NovaDbLookup[] = [];
const servers: VncgateServer[] = [];

/** Through the interface the proxy uses (lookup(token, signal)). */
function lookupOf(urls: string[], now?: () => number): NovaTokenLookup {
  const l = now ? new NovaDbLookup(urls, TIMEOUT_MS, now) : new NovaDbLookup(urls, TIMEOUT_MS);
  lookups.push(l);
  return l;
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const t = performance.now();
  const [result] = await Promise.allSettled([p]);
  return { ms: performance.now() - t, result: result! };
}

beforeAll(async () => {
  vnc = await startTinyVncServer({ name: 'instance-desk' });
  [maria, pg] = await Promise.all([startMariadb(), startPostgres()]);
  console.info(
    `start-up: MariaDB install-db ${maria.timings.initMs.toFixed(0)} ms + server ${maria.timings.startMs.toFixed(0)} ms; ` +
      `PostgreSQL initdb ${pg.timings.initMs.toFixed(0)} ms + server ${pg.timings.startMs.toFixed(0)} ms (in parallel)`,
  );
  [cell1, cell2, cellPg] = await Promise.all([createCell(maria, 'nova_cell1'), createCell(maria, 'nova_cell2'), createCell(pg, 'nova_cell1')]);
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await Promise.allSettled(lookups.map((l) => l.close()));
  await vnc?.close();
  await stopAll();
});

describe('the test cell databases are what Nova writes', () => {
  it('token_hash is the same sha256 hex the databases compute, and the raw token is not stored', async () => {
    const m = await authorize(cell1);
    const [mr] = await maria.query<{ h: string; raw: number }>(
      'SELECT SHA2(?, 256) = token_hash AS h, (SELECT COUNT(*) FROM console_auth_tokens WHERE token_hash = ?) AS raw FROM console_auth_tokens WHERE instance_uuid = ?',
      [m.token, m.token, m.instanceUuid],
      'nova_cell1',
    );
    expect(mr).toMatchObject({ h: 1, raw: 0 });
    const p = await authorize(cellPg);
    const [pr] = await pg.query<{ h: boolean }>(
      "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') = token_hash AS h FROM console_auth_tokens WHERE instance_uuid = $2",
      [p.token, p.instanceUuid],
      'nova_cell1',
    );
    expect(pr).toEqual({ h: true });
  });

  it('token_hash is unique (uniq_console_auth_tokens0token_hash), as Nova relies on for TokenInUse', async () => {
    const m = await authorize(cell1);
    const columns = '(token_hash, console_type, host, port, instance_uuid, expires)';
    await expect(
      maria.query(`INSERT INTO console_auth_tokens ${columns} VALUES (?, ?, ?, ?, ?, ?)`, [novaTokenHash(m.token), 'novnc', 'h', 1, randomUUID(), 1], 'nova_cell1'),
    ).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
    const p = await authorize(cellPg);
    await expect(
      pg.query(`INSERT INTO console_auth_tokens ${columns} VALUES ($1, $2, $3, $4, $5, $6)`, [novaTokenHash(p.token), 'novnc', 'h', 1, randomUUID(), 1], 'nova_cell1'),
    ).rejects.toMatchObject({ code: '23505', constraint: 'uniq_console_auth_tokens0token_hash' });
  });
});

describe('NovaDbLookup against real cell databases', () => {
  const expectConsole = (c: NovaConsole, t: { instanceUuid: string; expires: number }): void => {
    expect(c).toEqual({ instanceUuid: t.instanceUuid, host: '127.0.0.1', port: vnc.port, internalAccessPath: null, consoleType: 'novnc', expires: t.expires });
  };

  it('finds a valid token in MariaDB', async () => {
    const t = await authorize(cell1);
    expectConsole(await lookupOf([cell1.url]).lookup(t.token, never), t);
  });

  it('finds a valid token in PostgreSQL', async () => {
    const t = await authorize(cellPg);
    expectConsole(await lookupOf([cellPg.url]).lookup(t.token, never), t);
  });

  it('an expired token is TOKEN_ERR_INVALID (valid means expires > now, strictly)', async () => {
    for (const cell of [cell1, cellPg]) {
      const old = await authorize(cell, { expires: nowSeconds() - 1 });
      await expect(lookupOf([cell.url]).lookup(old.token, never)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
      // The boundary, with the clock pinned: valid one second before `expires`, invalid at it.
      const t = await authorize(cell, { expires: 2_000_000_000 });
      expectConsole(await lookupOf([cell.url], () => 1_999_999_999).lookup(t.token, never), t);
      await expect(lookupOf([cell.url], () => 2_000_000_000).lookup(t.token, never)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
    }
  });

  it('an unknown token is TOKEN_ERR_INVALID', async () => {
    const l = lookupOf([cell1.url, cell2.url, cellPg.url]);
    await expect(l.lookup(randomUUID(), never)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
  });

  it('several cells: finds a token in the second and in the third cell (MariaDB, MariaDB, PostgreSQL)', async () => {
    const l = lookupOf([cell1.url, cell2.url, cellPg.url]);
    const second = await authorize(cell2);
    expectConsole(await l.lookup(second.token, never), second);
    const third = await authorize(cellPg);
    expectConsole(await l.lookup(third.token, never), third);
    // Each row lives in its own cell only: the first cell knows neither.
    await expect(lookupOf([cell1.url]).lookup(second.token, never)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
  });

  it("a SQLAlchemy URL as in nova.conf works: mysql+pymysql://…?charset=utf8, postgresql+psycopg2://…", async () => {
    const m = await authorize(cell1);
    const url = pymysql(cell1.url);
    expect(url).toBe(`mysql+pymysql://${maria.user}:${maria.password}@127.0.0.1:${maria.port}/nova_cell1?charset=utf8`);
    expectConsole(await lookupOf([url]).lookup(m.token, never), m);
    const p = await authorize(cellPg);
    expectConsole(await lookupOf([cellPg.url.replace(/^postgres:/, 'postgresql+psycopg2:')]).lookup(p.token, never), p);
  });

  describe('a cell that is down', () => {
    let gone: Cell;
    beforeAll(async () => {
      // A real cell server, stopped: its port now refuses connections.
      const db = await startMariadb();
      gone = await createCell(db, 'nova_cell3');
      await db.stop();
    });

    it('unknown elsewhere → NOVA_ERR_DB (not TOKEN_ERR_INVALID: the token may be in that cell), at once', async () => {
      const { ms, result } = await timed(lookupOf([cell1.url, gone.url]).lookup(randomUUID(), never));
      expect(result).toMatchObject({ status: 'rejected', reason: { code: 'NOVA_ERR_DB' } });
      expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
    });

    it('a token in a cell that answers is still found', async () => {
      const t = await authorize(cellPg);
      expectConsole(await lookupOf([gone.url, cellPg.url]).lookup(t.token, never), t);
    });

    it('a hung cell (SIGSTOPped server, MariaDB or PostgreSQL) → NOVA_ERR_DB within the configured timeout', async () => {
      for (const [hung, other] of [
        [cell2, cellPg],
        [cellPg, cell1],
      ] as const) {
        const l = lookupOf([other.url, hung.url]);
        // Warm: the lookup's pool now holds an open connection to the cell that will hang.
        await expect(l.lookup(randomUUID(), never)).rejects.toMatchObject({ code: 'TOKEN_ERR_INVALID' });
        hung.db.pause();
        try {
          const { ms, result } = await timed(l.lookup(randomUUID(), never));
          expect(result).toMatchObject({ status: 'rejected', reason: { code: 'NOVA_ERR_DB' } });
          expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
          expect(ms).toBeLessThan(TIMEOUT_MS + 1_500);
          // A fresh pool (new TCP connections, handshake never answered) is bounded too.
          const cold = await timed(lookupOf([other.url, hung.url]).lookup(randomUUID(), never));
          expect(cold.result).toMatchObject({ status: 'rejected', reason: { code: 'NOVA_ERR_DB' } });
          expect(cold.ms).toBeLessThan(TIMEOUT_MS + 1_500);
        } finally {
          hung.db.resume();
        }
        // Once the cell answers again the same lookup recovers (the timed-out connection is not reused).
        const t = await authorize(hung);
        expectConsole(await l.lookup(t.token, never), t);
      }
    });
  });
});

describe("Nova console URLs through vncgate, tokens from the cell databases", () => {
  async function proxy(nova: Record<string, unknown> = {}): Promise<VncgateServer> {
    const config = loadConfig({
      env: {},
      overrides: {
        listen: ['127.0.0.1:0'],
        tls: { plainHttp: true },
        nova: { dbUrls: [pymysql(cell1.url), cellPg.url], timeoutMs: TIMEOUT_MS, ...nova },
        log: { level: 'silent' },
      },
    });
    const srv = await buildServer({ config, tokens: new MemoryTokenStore(), log: createLogger({ level: 'silent' }), nova: createNova(config) });
    servers.push(srv);
    return srv;
  }
  /** What noVNC opens for Nova's `vnc_lite.html?path=%3Ftoken%3D<uuid>`. */
  const novaWs = (srv: VncgateServer, token: string): string => `ws://${srv.addresses[0]}/?token=${token}`;

  it('a valid token opens the console, and again (reusable until it expires, as Nova)', async () => {
    const srv = await proxy();
    for (const cell of [cell1, cellPg]) {
      const t = await authorize(cell);
      for (let i = 0; i < 2; i++) {
        const r = await wsRfbConnect(novaWs(srv, t.token));
        expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk', width: 320, height: 200 } });
        if (r.ok) r.ws.close();
      }
    }
  });

  it('an expired token gets the readable reason', async () => {
    const srv = await proxy();
    const t = await authorize(cellPg, { expires: nowSeconds() - 5 });
    expect(await wsRfbConnect(novaWs(srv, t.token))).toMatchObject({
      ok: false,
      serverReason: 'This console link has expired or was already used - request a new one',
    });
  });

  it("a spice-html5 token does not open a VNC relay", async () => {
    const srv = await proxy();
    const t = await authorize(cell1, { consoleType: 'spice-html5' });
    expect(await wsRfbConnect(novaWs(srv, t.token))).toMatchObject({ ok: false, serverReason: 'This console link is not for a noVNC console' });
  });

  it('takes the token from a `token` cookie when the URL has none', async () => {
    const srv = await proxy();
    const t = await authorize(cell1);
    const r = await wsRfbConnect(`ws://${srv.addresses[0]}/`, { headers: { cookie: `lang=en; token=${t.token}` } });
    expect(r).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
    if (r.ok) r.ws.close();
  });

  it('single-use mode: a token opens one session only', async () => {
    const srv = await proxy({ tokenReuse: 'single-use' });
    const t = await authorize(cellPg);
    const first = await wsRfbConnect(novaWs(srv, t.token));
    expect(first).toMatchObject({ ok: true, init: { name: 'instance-desk' } });
    if (first.ok) first.ws.close();
    expect(await wsRfbConnect(novaWs(srv, t.token))).toMatchObject({
      ok: false,
      serverReason: 'This console link has expired or was already used - request a new one',
    });
  });

  it('a cell that does not answer: "try again shortly", not "expired"', async () => {
    const srv = await proxy();
    cellPg.db.pause();
    try {
      expect(await wsRfbConnect(novaWs(srv, randomUUID()))).toMatchObject({
        ok: false,
        serverReason: 'The console service cannot check this link right now - try again shortly',
      });
    } finally {
      cellPg.db.resume();
    }
  });
});
