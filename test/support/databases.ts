/**
 * Real database servers for the integration tier: PostgreSQL and MariaDB, each started by the test
 * in a fresh temp data directory (initdb / mariadb-install-db), listening on a free loopback port
 * and on a unix socket in that directory, tracked and stopped by PID, the directory removed after.
 *
 * Used for Nova's cell databases (`console_auth_tokens`), which vncgate's `NovaDbLookup` reads.
 *
 * Notes, measured on Debian 12 (PostgreSQL 15, MariaDB 10.11):
 * - PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not
 *   permitted). As root we run initdb and postgres as the `postgres` system user (else `nobody`)
 *   through `setpriv`, which execs in place, so the PID we track is the postmaster's own.
 * - postgres treats SIGTERM as "smart" shutdown, which waits for every client to disconnect (a
 *   test that forgot `lookup.close()` would stall it); we send SIGINT ("fast": abort sessions,
 *   checkpoint, exit) and fall back to ManagedProcess.stop (SIGTERM, then SIGKILL).
 * - mariadbd as root needs `--user=root`. mariadb-install-db passes options it does not know to the
 *   bootstrap mariadbd, so the small InnoDB settings apply there too. Our user is made by the
 *   server's `--init-file`: the bootstrap runs with --skip-grant-tables, where CREATE USER fails
 *   (ERROR 1290), so install-db's `--extra-file` cannot do it.
 * - Durability is switched off (fsync=off, innodb_flush_log_at_trx_commit=0, …): the data is
 *   thrown away anyway, and it halves start-up.
 * - A missing binary is an error naming the Debian package, never a skip: the integration tier
 *   must not pass by testing nothing.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import {
  ManagedProcess,
  defaultRegistry,
  removeTempDir,
  removeTempDirAtExit,
  runCommand,
  sleep,
  type ProcessRegistry,
  type Stoppable,
  waitUntilStopped,
} from './proc.js';
import { freePort, waitForListening } from './ports.js';
import { statFieldsAfterComm } from '../../tools/loadtest/proc-sampler.js';

export type DatabaseEngine = 'postgres' | 'mariadb';

export interface StartupTimings {
  /** initdb / mariadb-install-db. */
  initMs: number;
  /** Spawn of the server until the first `SELECT 1` answered (successful attempt). */
  startMs: number;
  /** Whole `start*()` call, temp dir to ready. */
  totalMs: number;
}

export interface TestDatabase extends Stoppable {
  readonly engine: DatabaseEngine;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Database named by `url`: `postgres` (PostgreSQL), `vncgate` (MariaDB). */
  readonly database: string;
  /** `postgres://user:pw@127.0.0.1:PORT/postgres` or `mysql://user:pw@127.0.0.1:PORT/vncgate`. */
  readonly url: string;
  /** Unix socket: the directory (PostgreSQL, socket `.s.PGSQL.<port>` inside) or the socket file (MariaDB). */
  readonly socket: string;
  /** Postmaster / mariadbd PID. */
  readonly pid: number;
  /** Temp dir holding data directory, socket and logs; removed by stop(). */
  readonly dir: string;
  readonly timings: StartupTimings;
  readonly attempts: number;
  readonly process: ManagedProcess;
  /** False once the server exited (stopped or crashed). */
  readonly running: boolean;
  /** The same server, another database. */
  urlFor(database: string): string;
  /** CREATE DATABASE (utf8mb3 on MariaDB, like Nova's cells; UTF8 on PostgreSQL); returns its URL. */
  createDatabase(name: string): Promise<string>;
  /**
   * Runs one statement as the admin user and returns the rows (PostgreSQL placeholders `$1`,
   * MariaDB `?`). `database` defaults to `this.database`. Bounded: 10 s.
   */
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], database?: string): Promise<R[]>;
  /** SIGSTOP the server (and, for PostgreSQL, its backends): sockets stay open, nothing answers. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** Closes the helper's own connections, stops the server by PID, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartDatabaseOptions {
  registry?: ProcessRegistry;
  /** Per attempt, spawn to ready. Default 30 s. */
  startTimeoutMs?: number;
  /** initdb / mariadb-install-db. Default 60 s. */
  initTimeoutMs?: number;
  /** Extra server arguments. */
  extraArgs?: readonly string[];
}

const HOST = '127.0.0.1';
const USER = 'vncgate';
const MAX_ATTEMPTS = 4;
const QUERY_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5_000;
const POOL_CLOSE_TIMEOUT_MS = 5_000;
const DB_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

// --- binaries ----------------------------------------------------------------------------------

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Debian's server binaries live outside PATH (/usr/lib/postgresql/N/bin, /usr/sbin). */
function findBinary(name: string, extraDirs: readonly string[], install: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...extraDirs];
  for (const d of dirs) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  throw new Error(`no \`${name}\` binary on PATH or in ${extraDirs.join(', ')}: ${install}. The integration tier needs a real server.`);
}

/** /usr/lib/postgresql/<major>/bin, newest major first. */
function postgresLibDirs(): string[] {
  try {
    return readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => `/usr/lib/postgresql/${v}/bin`);
  } catch {
    return [];
  }
}

// --- running as an unprivileged user -----------------------------------------------------------

interface Account {
  name: string;
  uid: number;
  gid: number;
}

function lookupAccount(name: string): Account | null {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return null;
  }
  for (const line of passwd.split('\n')) {
    const [n, , uid, gid] = line.split(':');
    if (n === name && uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/** The account postgres runs as when we are root; null when we are not root (run as ourselves). */
function postgresAccount(): Account | null {
  if (process.getuid?.() !== 0) return null;
  const account = lookupAccount('postgres') ?? lookupAccount('nobody');
  if (!account) throw new Error('startPostgres: running as root, and neither a `postgres` nor a `nobody` user exists to run the server as');
  return account;
}

/** Command and args that run `bin` as `account` (setpriv execs in place: the PID stays the server's). */
function asAccount(account: Account | null, bin: string, args: readonly string[]): { command: string; args: string[] } {
  if (!account) return { command: bin, args: [...args] };
  const setpriv = findBinary('setpriv', ['/usr/bin', '/bin'], 'install util-linux');
  return { command: setpriv, args: [`--reuid=${account.uid}`, `--regid=${account.gid}`, '--clear-groups', '--', bin, ...args] };
}

// --- processes ---------------------------------------------------------------------------------

function signalPid(proc: ManagedProcess, signal: NodeJS.Signals): void {
  // Only while Node has not reaped it: the PID cannot have been recycled yet.
  if (!proc.running) return;
  try {
    process.kill(proc.pid, signal);
  } catch {
    // exited meanwhile
  }
}

/** Direct children of `pid` (PostgreSQL backends of our postmaster), from /proc/<n>/stat. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const ppid = Number(statFieldsAfterComm(readFileSync(`/proc/${e}/stat`, 'latin1'))[1]);
      if (ppid === pid) found.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function lastLines(text: string, n = 15): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it resolves, the server exits, or the deadline passes. */
async function waitReady(proc: ManagedProcess, probe: () => Promise<unknown>, deadline: number): Promise<void> {
  let last = 'no attempt';
  while (performance.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited during start-up: ${proc.describe()}`);
    try {
      await withTimeout(probe(), Math.max(100, Math.min(2_000, deadline - performance.now())), 'SELECT 1');
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(25);
  }
  throw new Error(`${proc.name} did not answer SELECT 1 in time (last: ${last}): ${proc.describe()}`);
}

// --- client pools (the helper's own connections) -----------------------------------------------

interface Pools {
  query(database: string, sql: string, params: readonly unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

async function pgPools(urlFor: (db: string) => string): Promise<Pools> {
  const { default: pg } = await import('pg');
  const pools = new Map<string, InstanceType<typeof pg.Pool>>();
  return {
    async query(database, sql, params) {
      let pool = pools.get(database);
      if (!pool) {
        pool = new pg.Pool({ connectionString: urlFor(database), max: 2, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: QUERY_TIMEOUT_MS });
        pool.on('error', () => undefined); // an idle client killed by the server's shutdown
        pools.set(database, pool);
      }
      const r = await pool.query(sql, [...params]);
      return r.rows;
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((p) => withTimeout(p.end(), POOL_CLOSE_TIMEOUT_MS, 'closing pg pool')));
    },
  };
}

async function mysqlPools(urlFor: (db: string) => string): Promise<Pools> {
  const mysql = await import('mysql2/promise');
  const pools = new Map<string, ReturnType<typeof mysql.createPool>>();
  return {
    async query(database, sql, params) {
      let pool = pools.get(database);
      if (!pool) {
        pool = mysql.createPool({ uri: urlFor(database), connectionLimit: 2, connectTimeout: CONNECT_TIMEOUT_MS });
        pools.set(database, pool);
      }
      const [rows] = await pool.query({ sql, values: [...params], timeout: QUERY_TIMEOUT_MS });
      return Array.isArray(rows) ? rows : [rows];
    },
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled(all.map((p) => withTimeout(p.end(), POOL_CLOSE_TIMEOUT_MS, 'closing mysql2 pool')));
    },
  };
}

// --- common start-up skeleton ------------------------------------------------------------------

interface EngineSpec {
  engine: DatabaseEngine;
  label: string;
  database: string;
  password: string;
  dir: string;
  scheme: 'postgres' | 'mysql';
  socket: string;
  /** Port collisions: retry with another port. */
  retryable: RegExp;
  launch(port: number): Promise<ManagedProcess>;
  /** Anything to send before ManagedProcess.stop (SIGTERM, then SIGKILL). */
  shutdown(proc: ManagedProcess): void;
  pauseTargets(proc: ManagedProcess): number[];
  pools(urlFor: (db: string) => string): Promise<Pools>;
  createDatabaseSql(name: string): string;
  stopTimeoutMs: number;
}

async function startEngine(spec: EngineSpec, opts: StartDatabaseOptions, t0: number, initMs: number): Promise<TestDatabase> {
  const registry = opts.registry ?? defaultRegistry;
  const failures: string[] = [];
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const port = await freePort(HOST);
    const urlFor = (db: string): string =>
      `${spec.scheme}://${encodeURIComponent(USER)}:${encodeURIComponent(spec.password)}@${HOST}:${port}/${encodeURIComponent(db)}`;
    const proc = await spec.launch(port);
    let pools: Pools | undefined;
    try {
      const deadline = performance.now() + (opts.startTimeoutMs ?? 30_000);
      await waitForListening(proc, port, Math.max(1, deadline - performance.now()));
      pools = await spec.pools(urlFor);
      const p = pools;
      await waitReady(proc, () => p.query(spec.database, 'SELECT 1', []), deadline);
    } catch (err) {
      await pools?.close();
      spec.shutdown(proc);
      await proc.stop({ termTimeoutMs: spec.stopTimeoutMs });
      if (spec.retryable.test(proc.output()) && attempt < MAX_ATTEMPTS) {
        failures.push(`attempt ${attempt} (port ${port}): ${lastLines(proc.output(), 3)}`);
        continue;
      }
      throw new Error(`${spec.label}: start-up failed${failures.length > 0 ? ` (earlier: ${failures.join('; ')})` : ''}: ${(err as Error).message}`, { cause: err });
    }
    const startMs = performance.now() - proc.startedAt;
    const ownPools = pools;
    let paused = false;
    let stopped: Promise<void> | undefined;
    const db: TestDatabase = {
      engine: spec.engine,
      host: HOST,
      port,
      user: USER,
      password: spec.password,
      database: spec.database,
      url: urlFor(spec.database),
      socket: spec.socket,
      pid: proc.pid,
      dir: spec.dir,
      timings: { initMs, startMs, totalMs: performance.now() - t0 },
      attempts: attempt,
      process: proc,
      get running() {
        return proc.running;
      },
      urlFor,
      async createDatabase(name) {
        if (!DB_NAME.test(name)) throw new Error(`createDatabase: ${JSON.stringify(name)} is not a plain identifier`);
        await ownPools.query(spec.database, spec.createDatabaseSql(name), []);
        return urlFor(name);
      },
      async query<R>(sql: string, params: readonly unknown[] = [], database: string = spec.database): Promise<R[]> {
        if (stopped) throw new Error(`${spec.label}: query after stop()`);
        return (await ownPools.query(database, sql, params)) as R[];
      },
      pause() {
        if (!proc.running) throw new Error(`${spec.label} is not running`);
        // The server first, so it forks nothing new; then what it had forked (PostgreSQL's
        // backends), listed only now. SIGSTOP is delivered asynchronously: return only once every
        // thread of every target is stopped, or a query sent right after pause() may still be
        // answered.
        const stop = (pid: number): void => {
          try {
            process.kill(pid, 'SIGSTOP');
          } catch {
            // exited meanwhile
          }
        };
        stop(proc.pid);
        const targets = spec.pauseTargets(proc);
        for (const pid of targets) if (pid !== proc.pid) stop(pid);
        paused = true;
        waitUntilStopped(targets, 5_000, spec.label);
      },
      resume() {
        // Children first is not needed: SIGCONT to everyone we stopped, in any order.
        for (const pid of spec.pauseTargets(proc)) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            // exited meanwhile
          }
        }
        paused = false;
      },
      stop() {
        stopped ??= (async () => {
          registry.delete(db);
          try {
            // A stopped server neither answers our pool's goodbye nor acts on SIGTERM/SIGINT.
            if (paused) db.resume();
            await ownPools.close();
            spec.shutdown(proc);
            await proc.stop({ termTimeoutMs: spec.stopTimeoutMs });
          } finally {
            removeTempDir(spec.dir);
          }
        })();
        return stopped;
      },
    };
    return registry.add(db);
  }
  throw new Error(`${spec.label}: no free port after ${MAX_ATTEMPTS} attempts: ${failures.join('; ')}`);
}

// --- PostgreSQL --------------------------------------------------------------------------------

/**
 * A throw-away PostgreSQL server: superuser `vncgate` with a random password (scram-sha-256 over
 * TCP, trust on the unix socket), database `postgres`. Run as the `postgres` user when we are root.
 */
export async function startPostgres(opts: StartDatabaseOptions = {}): Promise<TestDatabase> {
  const t0 = performance.now();
  const postgres = realpathSync(
    findBinary('postgres', postgresLibDirs(), 'install it with `apt-get install postgresql` (Debian 12: PostgreSQL 15)'),
  );
  // initdb must be the same major version as the server.
  const initdb = findBinary('initdb', [dirname(postgres)], 'install it with `apt-get install postgresql`');
  const account = postgresAccount();
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-pg-'));
  removeTempDirAtExit(dir);
  try {
    const password = randomBytes(12).toString('hex');
    const data = join(dir, 'data');
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    await chmod(dir, 0o700);
    if (account) {
      await chown(dir, account.uid, account.gid);
      await chown(pwfile, account.uid, account.gid);
    }
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', HOME: dir };
    const initStart = performance.now();
    const init = asAccount(account, initdb, [
      '-D', data,
      '-U', USER,
      `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '-E', 'UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ]);
    await runCommand(init.command, init.args, { env, cwd: dir, timeoutMs: opts.initTimeoutMs ?? 60_000 });
    const initMs = performance.now() - initStart;

    return await startEngine(
      {
        engine: 'postgres',
        label: 'PostgreSQL',
        database: 'postgres',
        password,
        dir,
        scheme: 'postgres',
        socket: dir,
        retryable: /could not bind|Address already in use|could not create any TCP\/IP sockets/,
        launch: (port) => {
          const run = asAccount(account, postgres, [
            '-D', data,
            '-p', String(port),
            '-c', `listen_addresses=${HOST}`,
            '-c', `unix_socket_directories=${dir}`,
            '-c', 'fsync=off',
            '-c', 'synchronous_commit=off',
            '-c', 'full_page_writes=off',
            '-c', 'max_connections=50',
            '-c', 'shared_buffers=16MB',
            '-c', 'logging_collector=off',
            '-c', 'log_min_messages=warning',
            ...(opts.extraArgs ?? []),
          ]);
          return ManagedProcess.start({ name: `postgres (${dir})`, command: run.command, args: run.args, env, cwd: dir });
        },
        shutdown: (proc) => signalPid(proc, 'SIGINT'),
        pauseTargets: (proc) => (proc.running ? [proc.pid, ...childrenOf(proc.pid)] : []),
        pools: pgPools,
        createDatabaseSql: (name) => `CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`,
        stopTimeoutMs: 10_000,
      },
      opts,
      t0,
      initMs,
    );
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}

// --- MariaDB -----------------------------------------------------------------------------------

/** Settings for both the bootstrap (mariadb-install-db passes them on) and the server. */
const MARIADB_SMALL = [
  '--innodb-buffer-pool-size=32M',
  '--innodb-log-file-size=16M',
  '--innodb-flush-log-at-trx-commit=0',
  '--innodb-doublewrite=0',
  '--skip-log-bin',
  '--performance-schema=OFF',
];

/**
 * A throw-away MariaDB server: user `vncgate`@127.0.0.1/localhost with a random password and all
 * privileges, database `vncgate`, `character-set-server=utf8mb3` (Nova's cells: InnoDB, utf8).
 */
export async function startMariadb(opts: StartDatabaseOptions = {}): Promise<TestDatabase> {
  const t0 = performance.now();
  const install = 'install it with `apt-get install mariadb-server` (Debian 12: MariaDB 10.11)';
  const mariadbd = findBinary('mariadbd', ['/usr/sbin', '/usr/libexec'], install);
  const installDb = findBinary('mariadb-install-db', ['/usr/bin', '/usr/sbin'], install);
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-mariadb-'));
  removeTempDirAtExit(dir);
  try {
    const password = randomBytes(12).toString('hex');
    const data = join(dir, 'data');
    const tmp = join(dir, 'tmp');
    const socket = join(dir, 'mysqld.sock');
    await mkdir(tmp);
    await chmod(dir, 0o700);
    const initFile = join(dir, 'init.sql');
    // Connections over TCP come from 127.0.0.1 (with skip-name-resolve), over the socket from localhost.
    // Idempotent: mariadbd runs its init-file on every start.
    await writeFile(
      initFile,
      [
        `CREATE OR REPLACE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${password}';`,
        `GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1' WITH GRANT OPTION;`,
        `CREATE OR REPLACE USER '${USER}'@'localhost' IDENTIFIED BY '${password}';`,
        `GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'localhost' WITH GRANT OPTION;`,
        `CREATE DATABASE IF NOT EXISTS ${USER} CHARACTER SET utf8mb3;`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', HOME: dir };
    const initStart = performance.now();
    await runCommand(
      installDb,
      [
        '--no-defaults',
        `--datadir=${data}`,
        '--user=root',
        '--auth-root-authentication-method=socket',
        '--skip-test-db',
        '--skip-name-resolve',
        ...MARIADB_SMALL,
      ],
      { env, cwd: dir, timeoutMs: opts.initTimeoutMs ?? 60_000 },
    );
    const initMs = performance.now() - initStart;

    return await startEngine(
      {
        engine: 'mariadb',
        label: 'MariaDB',
        database: USER,
        password,
        dir,
        scheme: 'mysql',
        socket,
        retryable: /Address already in use|Can't start server: Bind on TCP\/IP port|Do you already have another (mysqld|mariadbd) server running/,
        launch: (port) =>
          ManagedProcess.start({
            name: `mariadbd (${dir})`,
            command: mariadbd,
            args: [
              '--no-defaults',
              // mariadbd refuses to run as root unless told to.
              '--user=root',
              `--datadir=${data}`,
              `--tmpdir=${tmp}`,
              `--socket=${socket}`,
              `--pid-file=${join(dir, 'mariadbd.pid')}`,
              `--init-file=${initFile}`,
              `--port=${port}`,
              `--bind-address=${HOST}`,
              '--skip-name-resolve',
              '--character-set-server=utf8mb3',
              '--collation-server=utf8mb3_general_ci',
              '--max-connections=100',
              ...MARIADB_SMALL,
              ...(opts.extraArgs ?? []),
            ],
            env,
            cwd: dir,
          }),
        // ManagedProcess.stop's SIGTERM is mariadbd's normal shutdown (it closes client connections).
        shutdown: () => undefined,
        pauseTargets: (proc) => (proc.running ? [proc.pid] : []),
        pools: mysqlPools,
        createDatabaseSql: (name) => `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb3`,
        stopTimeoutMs: 15_000,
      },
      opts,
      t0,
      initMs,
    );
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }
}
