/**
 * A real OpenStack Nova 31 (2025.1) API for the interop tier: Debian trixie's `nova-api` package
 * (`nova-api-wsgi` under uwsgi, noauth2) in the cached chroot that the Ironic tier also uses
 * (scripts/ironic-tier/build-chroot.sh), with its API database and cell databases in a real
 * MariaDB on this machine (test/support/databases.ts `startMariadb()`).
 *
 * What is Nova's own, not ours:
 * - the schemas: `nova-manage api_db sync`, `cell_v2 map_cell0`, `cell_v2 create_cell --name
 *   cell1`, `db sync` (cell0 and cell1), each timed;
 * - the rows vncgate reads: instances are created with `objects.Instance.create()` (+ their
 *   InstanceMapping), console tokens with `objects.ConsoleAuthToken(...).authorize(ttl)`, exactly
 *   as nova-compute does (scripts/ironic-tier/nova/vncgate_nova_tokens.py, run in the chroot);
 * - the API answering `GET /v2.1/os-console-auth-tokens/{token}`;
 * - nova.conf: Debian's packaged /etc/nova/nova.conf (all ~10 700 lines of it) with this tier's
 *   values set in place, so `vncgate config import --nova-conf` meets the file operators have;
 * - the uwsgi settings: Debian's /etc/nova/nova-api-uwsgi.ini, minus what would leave the
 *   instance's state dir (`logto`, `uid`/`gid`, `chdir`), plus a loopback `http-socket`.
 *
 * Why MariaDB on the host rather than in the chroot: it is the same server vncgate's own
 * db-lookup tests use (a PID-tracked, throw-away `mariadbd` on 127.0.0.1 with a random password),
 * the chroot shares the host's network namespace so Nova reaches it on 127.0.0.1, and the chroot
 * stays free of a second database server (size, build time, one more process to namespace).
 * Production cells are MySQL/MariaDB; the reference notes `db sync` builds the same 111 tables on
 * MariaDB 11.8 (trixie) as here on 10.11 (Debian 12).
 *
 * Isolation as in ironic.ts: everything Nova runs goes through in-chroot.sh (private mount and PID
 * namespaces, dies with its caller); the API binds 127.0.0.1 only, checked from /proc; stop() signals
 * only PIDs we spawned (uwsgi's master is the direct child of our unshare).
 *
 * Fails loudly: without root, the chroot (debootstrap, a mirror serving trixie) or MariaDB,
 * `startRealNova` throws; it never skips.
 */
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMariadb, type TestDatabase } from './databases.js';
import { ensureIronicChroot, runInChroot, type ChrootCommandResult, type IronicChroot } from './ironic.js';
import { freePort, isLoopback, listeningSocketsOf } from './ports.js';
import { ManagedProcess, defaultRegistry, removeTempDir, removeTempDirAtExit, sleep, type ProcessRegistry, type Stoppable } from './proc.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const TIER_DIR = join(REPO_ROOT, 'scripts', 'ironic-tier');
const IN_CHROOT = join(TIER_DIR, 'in-chroot.sh');
const TOKENS_SCRIPT = join(TIER_DIR, 'nova', 'vncgate_nova_tokens.py');
const STAMP_REL = join('etc', 'vncgate-ironic-tier.stamp');
/** Mount point of the instance's state dir inside the chroot (in-chroot.sh). */
const MNT = '/mnt';
const CONF_IN_CHROOT = `${MNT}/etc/nova.conf`;

/** The microversion vncgate's API resolver sends (src/nova NOVA_MICROVERSION). */
export const NOVA_TOKEN_MICROVERSION = '2.31';
/** Nova's default `[vnc] novncproxy_base_url` page, with noVNC ≥ 1.0's name for it. */
export const DEFAULT_NOVNCPROXY_BASE_URL = 'http://127.0.0.1:6080/vnc_lite.html';
/** noauth2 token of an admin: user `admin` in project `admin` (see the policy rule below). */
export const NOAUTH_ADMIN = 'admin:admin';

// --- the chroot ----------------------------------------------------------------------------------

export interface NovaChroot extends IronicChroot {
  /** Debian package versions from the chroot's stamp, e.g. `2:31.0.0-6+deb13u3`. */
  novaVersion: string;
  novaApiVersion: string;
  uwsgiVersion: string;
}

/** The shared trixie chroot (built or reused), with the Nova packages checked to be in it. */
export async function ensureNovaChroot(opts: { chroot?: string; timeoutMs?: number } = {}): Promise<NovaChroot> {
  const chroot = await ensureIronicChroot(opts);
  const stamp = readFileSync(join(chroot.path, STAMP_REL), 'utf8');
  const versions = new Map(
    (stamp.split('\n')[1] ?? '').split(' ').flatMap((kv) => {
      const i = kv.indexOf('=');
      return i > 0 ? [[kv.slice(0, i), kv.slice(i + 1)] as const] : [];
    }),
  );
  const nova = versions.get('nova-common');
  const api = versions.get('nova-api');
  if (nova === undefined || api === undefined) {
    throw new Error(
      `real-Nova tier: the chroot at ${chroot.path} has no nova-common/nova-api (stamp: ${JSON.stringify(stamp.split('\n')[0])}); ` +
        'scripts/ironic-tier/build-chroot.sh installs them — is it an old build script?',
    );
  }
  return { ...chroot, novaVersion: nova, novaApiVersion: api, uwsgiVersion: versions.get('uwsgi-core') ?? 'unknown' };
}

// --- nova.conf ------------------------------------------------------------------------------------

export type IniOverrides = Readonly<Record<string, Readonly<Record<string, string | number | boolean>>>>;

/**
 * Sets `key = value` in an oslo.config file the way an operator edits one: every active line of a
 * key we set is dropped (oslo.config would otherwise read repeats as a list for some options), the
 * new lines go right under the section header, missing sections are appended. Comments stay.
 */
export function setIniValues(text: string, overrides: IniOverrides): string {
  const lines = text.split('\n');
  const out: string[] = [];
  const done = new Set<string>();
  let section: string | null = null;
  const emit = (name: string): void => {
    const kv = overrides[name];
    if (kv === undefined) return;
    for (const [k, v] of Object.entries(kv)) out.push(`${k} = ${String(v)}`);
    done.add(name);
  };
  for (const line of lines) {
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      out.push(line);
      if (!done.has(section)) emit(section);
      continue;
    }
    const kv = /^([^#;\s][^=]*?)\s*=/.exec(line);
    if (kv && section !== null && overrides[section]?.[kv[1]!] !== undefined) continue;
    out.push(line);
  }
  for (const name of Object.keys(overrides)) {
    if (done.has(name)) continue;
    out.push('', `[${name}]`);
    emit(name);
  }
  return out.join('\n');
}

/** Debian's nova-api-uwsgi.ini without the settings that point outside the state dir. */
function uwsgiIni(debianIni: string, port: number, processes: number): string {
  const dropped = /^\s*(logto|uid|gid|chdir|processes|http-socket|https-socket)\s*=/;
  const kept = debianIni.split('\n').filter((l) => !dropped.test(l));
  return [
    ...kept,
    '',
    '# vncgate real-Nova tier (test/support/nova.ts): loopback only, log to stderr, state dir.',
    `http-socket = 127.0.0.1:${port}`,
    `processes = ${processes}`,
    `chdir = ${MNT}/state`,
    // Exit if the app cannot load (instead of serving "no app loaded" 500s).
    'need-app = true',
    `env = OS_NOVA_CONFIG_DIR=${MNT}/etc`,
    '',
  ].join('\n');
}

/**
 * noauth2 makes `admin:admin` a context with is_admin=True but no roles; the admin-only
 * os-console-auth-tokens policy (rule:context_is_admin = role:admin) needs this to pass.
 */
const POLICY_YAML = '"context_is_admin": "role:admin or is_admin:True"\n';

// --- the running Nova ---------------------------------------------------------------------------

export interface NovaResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

export interface NovaApiOptions {
  /** `X-OpenStack-Nova-API-Version`; null sends none (2.1). Default NOVA_TOKEN_MICROVERSION. */
  microversion?: string | null;
  /** noauth2 `X-Auth-Token` (`user:project`); null sends none (noauth2 then answers 204 itself). Default admin:admin. */
  authToken?: string | null;
  headers?: Record<string, string>;
  /** Default 30 s. */
  timeoutMs?: number;
}

export interface InstanceSpec {
  /** Default: a new UUID4. */
  uuid?: string;
  projectId?: string;
  userId?: string;
  /** The compute host name recorded on the instance. Default `vncgate-test-compute`. */
  host?: string;
  displayName?: string;
}

export interface TokenSpec {
  instanceUuid: string;
  /** `novnc` (default) or `spice-html5`. */
  consoleType?: 'novnc' | 'spice-html5';
  /** The console endpoint the token authorizes (Xvnc's). */
  host: string;
  port: number;
  internalAccessPath?: string | null;
  /** Seconds; default `[consoleauth] token_ttl` of this Nova. */
  ttl?: number;
  /** Owner of the instance (authorize runs under its elevated context). Default the instance's defaults. */
  projectId?: string;
  userId?: string;
}

/** What `ConsoleAuthToken.authorize()` returned. */
export interface AuthorizedToken {
  token: string;
  /** `ConsoleAuthToken.access_url`: the URL Nova hands to users. */
  access_url: string;
  /** Epoch seconds. */
  expires: number;
  console_type: string;
  id: number;
  instance_uuid: string;
  host: string;
  port: number;
}

export interface NovaTimings {
  /** startMariadb() (0 when a server was passed in). */
  mariadbMs: number;
  /** CREATE DATABASE × 3. */
  createDatabasesMs: number;
  apiDbSyncMs: number;
  mapCell0Ms: number;
  createCellMs: number;
  /** `nova-manage db sync`: cell0 and cell1 schemas. */
  dbSyncMs: number;
  /** Spawn of uwsgi until GET / answered and the app served /v2.1/ (successful attempt). */
  apiStartupMs: number;
  /** The whole startRealNova(). */
  totalMs: number;
}

export interface StartRealNovaOptions {
  chroot?: string;
  /** A running MariaDB to hold the databases; default: a new one (stopped with this Nova). */
  mariadb?: TestDatabase;
  /** `[vnc] novncproxy_base_url`. Default DEFAULT_NOVNCPROXY_BASE_URL. */
  novncproxyBaseUrl?: string;
  /** `[consoleauth] token_ttl`. Default 600 (Nova's). */
  tokenTtlS?: number;
  /** uwsgi worker processes. Default 2 (Debian: 16). */
  processes?: number;
  /** More `[section] key = value` for nova.conf, applied last. */
  extraConfig?: IniOverrides;
  debug?: boolean;
  /** Per attempt, spawn to the API answering. Default 90 s. */
  startTimeoutMs?: number;
  registry?: ProcessRegistry;
}

export interface RealNova extends Stoppable {
  /** `http://127.0.0.1:<port>` (the uwsgi root: GET / lists the API versions). */
  url: string;
  /** `http://127.0.0.1:<port>/v2.1`: what VNCGATE_NOVA_URL takes. */
  computeUrl: string;
  apiPort: number;
  /** Host PID of uwsgi's master (the direct child of in-chroot.sh's unshare). */
  pid: number;
  process: ManagedProcess;
  chroot: NovaChroot;
  mariadb: TestDatabase;
  /** SQLAlchemy URLs exactly as nova.conf and the cell mappings hold them. */
  dbUrls: { api: string; cell0: string; cell1: string };
  /** Database names on `mariadb`. */
  databases: { api: string; cell0: string; cell1: string };
  /** Host path of the nova.conf Nova runs with (Debian's file with our values). */
  confPath: string;
  conf: string;
  /** Host path of the instance's state dir; removed by stop(). */
  stateDir: string;
  novncproxyBaseUrl: string;
  tokenTtlS: number;
  /** From GET /v2.1/: `min_version` and `version`. */
  minMicroversion: string;
  maxMicroversion: string;
  timings: NovaTimings;
  api(method: string, path: string, opts?: NovaApiOptions): Promise<NovaResponse>;
  /** Runs `nova-manage --config-file <our nova.conf> ARGS` in the chroot. */
  manage(args: readonly string[], timeoutMs?: number): Promise<ChrootCommandResult>;
  /** An active instance in cell1 (Instance.create()) and its InstanceMapping. Returns its UUID. */
  createInstance(spec?: InstanceSpec): Promise<string>;
  /** Console tokens from Nova's ConsoleAuthToken.authorize(), in one Python run. */
  authorize(specs: readonly TokenSpec[]): Promise<AuthorizedToken[]>;
  /** Tail of uwsgi's and nova-api's log. */
  output(): string;
  stop(): Promise<void>;
}

const PROJECT = 'vncgate-project';
const USER = 'vncgate-user';
const COMPUTE_HOST = 'vncgate-test-compute';
/** uwsgi lines that mean the app will never serve (lazy-apps workers would respawn forever). */
const FATAL_STARTUP = /no app loaded|GAME OVER|Traceback \(most recent call last\)|unable to load configuration|!!! no internal routing support/;
const PORT_TAKEN = /Address already in use|probably another instance of uWSGI is running/;
const MAX_ATTEMPTS = 3;

function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

async function fetchNova(url: string, method: string, opts: NovaApiOptions): Promise<NovaResponse> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  const mv = opts.microversion === undefined ? NOVA_TOKEN_MICROVERSION : opts.microversion;
  if (mv !== null) headers['X-OpenStack-Nova-API-Version'] = mv;
  const auth = opts.authToken === undefined ? NOAUTH_ADMIN : opts.authToken;
  if (auth !== null) headers['X-Auth-Token'] = auth;
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(Math.ceil(opts.timeoutMs ?? 30_000)), redirect: 'manual' });
  const text = await res.text();
  let json: unknown;
  if (text.length > 0 && (res.headers.get('content-type') ?? '').includes('json')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json };
}

function check(r: ChrootCommandResult, what: string): void {
  if (r.exitCode !== 0) {
    throw new Error(`real-Nova tier: ${what} failed (exit ${String(r.exitCode ?? r.signal)}):\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`);
  }
}

export async function startRealNova(opts: StartRealNovaOptions = {}): Promise<RealNova> {
  const t0 = performance.now();
  const registry = opts.registry ?? defaultRegistry;
  if (process.getuid?.() !== 0) throw new Error(`real-Nova tier: must run as root (uid ${String(process.getuid?.())}): chroot and unshare need it`);
  const chroot = await ensureNovaChroot(opts);

  let t = performance.now();
  const ownDb = opts.mariadb === undefined;
  const mariadb = opts.mariadb ?? (await startMariadb());
  const mariadbMs = ownDb ? performance.now() - t : 0;

  const stateDir = mkdtempSync(join(tmpdir(), 'vncgate-nova-'));
  removeTempDirAtExit(stateDir);
  const cleanupOnError = async (): Promise<void> => {
    removeTempDir(stateDir);
    if (ownDb) await mariadb.stop();
  };
  try {
    for (const sub of ['etc', 'state', 'state/locks', '.cache']) mkdirSync(join(stateDir, sub), { recursive: true });
    const suffix = `${process.pid}_${randomUUID().slice(0, 8)}`;
    const databases = { api: `nova_api_${suffix}`, cell0: `nova_cell0_${suffix}`, cell1: `nova_cell1_${suffix}` };
    t = performance.now();
    for (const name of Object.values(databases)) await mariadb.createDatabase(name);
    const createDatabasesMs = performance.now() - t;
    // What an operator writes in nova.conf (oslo.db: SQLAlchemy URL, PyMySQL driver, utf8).
    const sqlaUrl = (db: string): string =>
      `mysql+pymysql://${encodeURIComponent(mariadb.user)}:${encodeURIComponent(mariadb.password)}@127.0.0.1:${mariadb.port}/${db}?charset=utf8`;
    const dbUrls = { api: sqlaUrl(databases.api), cell0: sqlaUrl(databases.cell0), cell1: sqlaUrl(databases.cell1) };

    const novncproxyBaseUrl = opts.novncproxyBaseUrl ?? DEFAULT_NOVNCPROXY_BASE_URL;
    const tokenTtlS = opts.tokenTtlS ?? 600;
    const buildConf = (): string => {
      const overrides: Record<string, Record<string, string | number | boolean>> = {
        DEFAULT: {
          my_ip: '127.0.0.1',
          host: 'vncgate-test-nova-api',
          state_path: `${MNT}/state`,
          // No message queue: the console-token API and nova-manage need none; the cell mapping
          // still needs a transport URL, and the `fake` oslo.messaging driver is Nova's own test one.
          transport_url: 'fake:/',
          debug: opts.debug ?? false,
          use_stderr: true,
        },
        api: { auth_strategy: 'noauth2' },
        api_database: { connection: dbUrls.api },
        database: { connection: dbUrls.cell1 },
        // The proxy side (nova-novncproxy's options; here for `vncgate config import`) and the
        // compute side (novncproxy_base_url: the URL authorize() builds).
        vnc: {
          enabled: true,
          novncproxy_base_url: novncproxyBaseUrl,
          novncproxy_host: '127.0.0.1',
          novncproxy_port: 6080,
          server_listen: '127.0.0.1',
          server_proxyclient_address: '127.0.0.1',
        },
        spice: { server_listen: '127.0.0.1', html5proxy_base_url: 'http://127.0.0.1:6082/spice_auto.html' },
        consoleauth: { token_ttl: tokenTtlS },
        oslo_policy: { policy_file: `${MNT}/etc/policy.yaml` },
        oslo_concurrency: { lock_path: `${MNT}/state/locks` },
        oslo_messaging_notifications: { driver: 'noop' },
        wsgi: { api_paste_config: `${MNT}/etc/api-paste.ini` },
      };
      for (const [name, kv] of Object.entries(opts.extraConfig ?? {})) overrides[name] = { ...overrides[name], ...kv };
      return setIniValues(readFileSync(join(chroot.path, 'etc', 'nova', 'nova.conf'), 'utf8'), overrides);
    };
    const confPath = join(stateDir, 'etc', 'nova.conf');
    const conf = buildConf();
    writeFileSync(confPath, conf);
    writeFileSync(join(stateDir, 'etc', 'policy.yaml'), POLICY_YAML);
    copyFileSync(join(chroot.path, 'etc', 'nova', 'api-paste.ini'), join(stateDir, 'etc', 'api-paste.ini'));
    copyFileSync(TOKENS_SCRIPT, join(stateDir, 'vncgate_nova_tokens.py'));

    const manage = (args: readonly string[], timeoutMs = 180_000): Promise<ChrootCommandResult> =>
      runInChroot(chroot.path, stateDir, {}, ['nova-manage', '--config-file', CONF_IN_CHROOT, ...args], timeoutMs);

    const apiDbSync = await manage(['api_db', 'sync']);
    check(apiDbSync, 'nova-manage api_db sync');
    const mapCell0 = await manage(['cell_v2', 'map_cell0', '--database_connection', dbUrls.cell0]);
    check(mapCell0, 'nova-manage cell_v2 map_cell0');
    const createCell = await manage(['cell_v2', 'create_cell', '--name', 'cell1', '--verbose']);
    check(createCell, 'nova-manage cell_v2 create_cell');
    const dbSync = await manage(['db', 'sync']);
    check(dbSync, 'nova-manage db sync');
    if (/WARNING: cell0 mapping not found|ERROR/.test(dbSync.stdout)) throw new Error(`nova-manage db sync: ${dbSync.stdout}`);

    const debianUwsgi = readFileSync(join(chroot.path, 'etc', 'nova', 'nova-api-uwsgi.ini'), 'utf8');
    const failures: string[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const apiPort = await freePort();
      writeFileSync(join(stateDir, 'etc', 'nova-api-uwsgi.ini'), uwsgiIni(debianUwsgi, apiPort, opts.processes ?? 2));
      const proc = await ManagedProcess.start({
        name: `nova-api (uwsgi) :${apiPort}`,
        command: IN_CHROOT,
        args: [chroot.path, stateDir, 'uwsgi', '--ini', `${MNT}/etc/nova-api-uwsgi.ini`],
        outputLimitBytes: 512 * 1024,
      });
      const url = `http://127.0.0.1:${apiPort}`;
      let started: { pid: number; min: string; max: string };
      try {
        started = await waitForNovaApi(proc, url, apiPort, opts.startTimeoutMs ?? 90_000);
      } catch (err) {
        await stopUwsgi(proc, childOf(proc.pid));
        if (PORT_TAKEN.test(proc.output()) && attempt < MAX_ATTEMPTS) {
          failures.push(`attempt ${attempt} (port ${apiPort}): ${(err as Error).message.split('\n')[0] ?? ''}`);
          continue;
        }
        throw err;
      }
      const apiStartupMs = performance.now() - proc.startedAt;
      const pid = started.pid;

      const tokensRun = async (request: unknown): Promise<{ instances: { uuid: string }[]; tokens: AuthorizedToken[] }> => {
        const r = await runInChroot(chroot.path, stateDir, {}, ['python3', `${MNT}/vncgate_nova_tokens.py`, CONF_IN_CHROOT, JSON.stringify(request)], 120_000);
        check(r, 'vncgate_nova_tokens.py (Nova objects)');
        const line = r.stdout.trim().split('\n').pop() ?? '';
        return JSON.parse(line) as { instances: { uuid: string }[]; tokens: AuthorizedToken[] };
      };
      const instances = new Map<string, { projectId: string; userId: string }>();

      let stopped: Promise<void> | undefined;
      const nova: RealNova = {
        url,
        computeUrl: `${url}/v2.1`,
        apiPort,
        pid,
        process: proc,
        chroot,
        mariadb,
        dbUrls,
        databases,
        confPath,
        conf,
        stateDir,
        novncproxyBaseUrl,
        tokenTtlS,
        minMicroversion: started.min,
        maxMicroversion: started.max,
        timings: {
          mariadbMs,
          createDatabasesMs,
          apiDbSyncMs: apiDbSync.durationMs,
          mapCell0Ms: mapCell0.durationMs,
          createCellMs: createCell.durationMs,
          dbSyncMs: dbSync.durationMs,
          apiStartupMs,
          totalMs: performance.now() - t0,
        },
        api: (method, path, apiOpts = {}) => fetchNova(`${url}${path}`, method, apiOpts),
        manage,
        createInstance: async (spec = {}) => {
          const uuid = spec.uuid ?? randomUUID();
          const projectId = spec.projectId ?? PROJECT;
          const userId = spec.userId ?? USER;
          await tokensRun({
            instances: [{ uuid, project_id: projectId, user_id: userId, host: spec.host ?? COMPUTE_HOST, display_name: spec.displayName ?? 'vncgate-test' }],
          });
          instances.set(uuid, { projectId, userId });
          return uuid;
        },
        authorize: async (specs) => {
          const out = await tokensRun({
            tokens: specs.map((s) => {
              const owner = instances.get(s.instanceUuid);
              return {
                instance_uuid: s.instanceUuid,
                project_id: s.projectId ?? owner?.projectId ?? PROJECT,
                user_id: s.userId ?? owner?.userId ?? USER,
                console_type: s.consoleType ?? 'novnc',
                host: s.host,
                port: s.port,
                internal_access_path: s.internalAccessPath ?? null,
                ttl: s.ttl ?? tokenTtlS,
              };
            }),
          });
          return out.tokens;
        },
        output: () => proc.output(),
        stop: () => {
          stopped ??= (async () => {
            registry.delete(nova);
            try {
              await stopUwsgi(proc, pid);
            } finally {
              removeTempDir(stateDir);
              if (ownDb) await mariadb.stop();
            }
          })();
          return stopped;
        },
      };
      return registry.add(nova);
    }
    throw new Error(`startRealNova: no free port after ${MAX_ATTEMPTS} attempts:\n${failures.join('\n')}`);
  } catch (err) {
    await cleanupOnError();
    throw err;
  }
}

/**
 * Waits until uwsgi's master (our unshare's child) holds the port on loopback only and the Nova
 * app answers GET /v2.1/ as admin (the app loads lazily in each worker, after the bind).
 */
async function waitForNovaApi(proc: ManagedProcess, url: string, port: number, timeoutMs: number): Promise<{ pid: number; min: string; max: string }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw new Error(`nova-api exited during start-up: ${proc.describe()}`);
    if (FATAL_STARTUP.test(proc.output())) throw new Error(`nova-api failed to start: ${proc.describe()}`);
    const pid = childOf(proc.pid);
    if (pid !== undefined) {
      const sockets = listeningSocketsOf(pid);
      const exposed = sockets.filter((s) => !isLoopback(s.address));
      if (exposed.length > 0) throw new Error(`nova-api listens beyond loopback: ${exposed.map((s) => `${s.address}:${s.port}`).join(', ')}`);
      if (sockets.some((s) => s.port === port)) {
        const r = await fetchNova(`${url}/v2.1/`, 'GET', { microversion: null, timeoutMs: Math.max(1000, Math.min(20_000, deadline - performance.now())) }).catch(() => undefined);
        const v = (r?.json as { version?: { min_version?: string; version?: string } } | undefined)?.version;
        if (r?.status === 200 && v?.min_version && v.version) return { pid, min: v.min_version, max: v.version };
      }
    }
    if (performance.now() >= deadline) throw new Error(`nova-api not up on ${url} within ${timeoutMs} ms: ${proc.describe()}`);
    await sleep(100);
  }
}

/**
 * SIGTERM to uwsgi's master (die-on-term: it stops its workers and exits; unshare, which blocks
 * SIGTERM itself, then exits too), SIGKILL to it, last SIGKILL to unshare, whose --kill-child takes
 * the PID namespace (workers included) down. Only while unshare lives, so the child PID is ours.
 */
async function stopUwsgi(proc: ManagedProcess, masterPid: number | undefined): Promise<void> {
  const signalMaster = (sig: NodeJS.Signals): void => {
    if (masterPid === undefined || !proc.running) return;
    try {
      process.kill(masterPid, sig);
    } catch {
      // already gone
    }
  };
  signalMaster('SIGTERM');
  if (await settles(proc.exited, 15_000)) return;
  signalMaster('SIGKILL');
  if (await settles(proc.exited, 5_000)) return;
  await proc.stop({ termTimeoutMs: 100, killTimeoutMs: 5_000 });
}

async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
