/**
 * A real OpenStack Ironic 29 (2025.1) for the interop tier: the all-in-one `ironic` process (API +
 * conductor + its own noVNC proxy) from Debian trixie, run in a cached chroot on this Debian 12
 * machine (scripts/ironic-tier/build-chroot.sh), standalone: sqlite, noauth, `rpc_transport=none`.
 *
 * How the console target reaches Ironic: graphical console interfaces ask a *console container
 * provider* for the VNC endpoint. Ours (scripts/ironic-tier/provider/, entry point `vncgate-test`)
 * starts nothing and returns the loopback VNC server named in the node's `driver_info`
 * (`vncgate_test_vnc_host`/`_port`), so `createVncNode({vncHost, vncPort})` makes the real Ironic
 * issue console URLs and tokens for a real Xvnc the test started.
 *
 * Isolation (see scripts/ironic-tier/in-chroot.sh): each Ironic runs in a private mount and PID
 * namespace. /proc, /sys, /dev and the instance's state dir (at /mnt) are mounted only there, so
 * nothing is ever mounted on the host and nothing needs unmounting: the namespace dies with the
 * process, even after SIGKILL. Several instances (other engineers' runs) can share the chroot.
 * Everything binds 127.0.0.1 and that is checked from /proc after start-up.
 *
 * Fails loudly: without root, debootstrap or a mirror serving trixie, `startRealIronic` throws.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagedProcess,
  RingBuffer,
  defaultRegistry,
  removeTempDir,
  removeTempDirAtExit,
  sleep,
  type ProcessRegistry,
  type Stoppable,
} from './proc.js';
import { freePort, isLoopback, listeningSocketsOf } from './ports.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const TIER_DIR = join(REPO_ROOT, 'scripts', 'ironic-tier');
const BUILD_SCRIPT = join(TIER_DIR, 'build-chroot.sh');
const IN_CHROOT = join(TIER_DIR, 'in-chroot.sh');
const PROVIDER_DIR = join(TIER_DIR, 'provider');

export const DEFAULT_IRONIC_CHROOT = '/var/cache/vncgate/ironic-trixie';
/** Highest microversion of Ironic 29.0.5; the default for `api()`. */
export const IRONIC_MICROVERSION = '1.96';
/** Entry-point name of our console container provider (`[vnc] container_provider`). */
export const TEST_PROVIDER_NAME = 'vncgate-test';
/** driver_info keys our provider reads. */
export const TEST_VNC_HOST_KEY = 'vncgate_test_vnc_host';
export const TEST_VNC_PORT_KEY = 'vncgate_test_vnc_port';
/** Mount point of the instance's state dir inside the chroot. */
const STATE_IN_CHROOT = '/mnt';

// --- the chroot ----------------------------------------------------------------------------------

export interface IronicChroot {
  path: string;
  /** Debian package versions, e.g. `1:29.0.5-0+deb13u3`. */
  ironicVersion: string;
  ironicclientVersion: string;
  /** Wall time of build-chroot.sh in this process (a reuse takes milliseconds). */
  buildMs: number;
}

export interface EnsureChrootOptions {
  /** Default `$VNCGATE_IRONIC_CHROOT` or /var/cache/vncgate/ironic-trixie. */
  chroot?: string;
  /** Default 20 min: a build from nothing takes ~2 min on the CI machine. */
  timeoutMs?: number;
  /** Echo build-chroot.sh progress to this process's stderr. Default true. */
  echoProgress?: boolean;
}

const chrootPromises = new Map<string, Promise<IronicChroot>>();

function chrootPath(opts: { chroot?: string }): string {
  return opts.chroot ?? process.env['VNCGATE_IRONIC_CHROOT'] ?? DEFAULT_IRONIC_CHROOT;
}

/**
 * Builds the trixie chroot, or reuses it (~10 ms when its stamp matches). Once per process and
 * path; a failure is not cached, so the next caller retries.
 */
export function ensureIronicChroot(opts: EnsureChrootOptions = {}): Promise<IronicChroot> {
  const path = chrootPath(opts);
  let p = chrootPromises.get(path);
  if (p === undefined) {
    p = buildChroot(path, opts).catch((err: unknown) => {
      chrootPromises.delete(path);
      throw err;
    });
    chrootPromises.set(path, p);
  }
  return p;
}

async function buildChroot(path: string, opts: EnsureChrootOptions): Promise<IronicChroot> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      `real-Ironic tier: must run as root (uid ${String(process.getuid?.())}): debootstrap, chroot and unshare need it`,
    );
  }
  const started = performance.now();
  const timeoutMs = opts.timeoutMs ?? 20 * 60_000;
  const stderr = new RingBuffer(32 * 1024);
  const child = spawn('bash', [BUILD_SCRIPT], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VNCGATE_IRONIC_CHROOT: path },
  });
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => {
    stderr.push(d);
    if (opts.echoProgress ?? true) process.stderr.write(d);
  });
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(`no exit within ${timeoutMs} ms`);
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(`cannot run bash: ${err.message}`);
    });
    child.once('close', (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? `killed by ${String(signal)}`);
    });
  });
  if (code !== 0) {
    throw new Error(
      `real-Ironic tier: cannot build the Debian trixie chroot at ${path} (scripts/ironic-tier/build-chroot.sh: ` +
        `${typeof code === 'number' ? `exit ${code}` : code}). The tier needs root, debootstrap and a Debian mirror ` +
        `serving trixie; it does not skip.\n--- build-chroot.sh stderr ---\n${stderr.toString()}`,
    );
  }
  const stamp = await readFile(join(path, 'etc', 'vncgate-ironic-tier.stamp'), 'utf8');
  const versions = new Map(
    (stamp.split('\n')[1] ?? '').split(' ').flatMap((kv) => {
      const i = kv.indexOf('=');
      return i > 0 ? [[kv.slice(0, i), kv.slice(i + 1)] as const] : [];
    }),
  );
  return {
    path,
    ironicVersion: versions.get('ironic-common') ?? 'unknown',
    ironicclientVersion: versions.get('python3-ironicclient') ?? 'unknown',
    buildMs: performance.now() - started,
  };
}

// --- one-shot commands in the chroot ----------------------------------------------------------

export interface ChrootCommandResult {
  stdout: string;
  stderr: string;
  /** null when killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  durationMs: number;
}

/**
 * Runs `command` in the chroot via in-chroot.sh with the given environment (only these variables
 * exist inside). Never rejects on a non-zero exit; rejects on a timeout (after SIGKILL, which takes
 * the whole PID namespace down) or when it cannot spawn.
 */
export async function runInChroot(
  chroot: string,
  stateDir: string | undefined,
  env: Readonly<Record<string, string>>,
  command: readonly string[],
  timeoutMs = 60_000,
): Promise<ChrootCommandResult> {
  const started = performance.now();
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const child = spawn(IN_CHROOT, [chroot, stateDir ?? '-', ...assignments, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = new RingBuffer(1024 * 1024);
  const stderr = new RingBuffer(64 * 1024);
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`in chroot: ${command.join(' ')}: no exit within ${timeoutMs} ms\n${stderr.toString()}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${IN_CHROOT}: ${err.message}`, { cause: err }));
    });
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ stdout: stdout.toString(), stderr: stderr.toString(), exitCode, signal, durationMs: performance.now() - started });
    });
  });
}

// --- the running Ironic ----------------------------------------------------------------------

export interface IronicResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  text: string;
  /** Parsed body when it is non-empty JSON, else undefined. */
  json: unknown;
}

export interface ApiOptions {
  /** `X-OpenStack-Ironic-API-Version`; default IRONIC_MICROVERSION; null sends no header (→ 1.1). */
  microversion?: string | null;
  headers?: Record<string, string>;
  /** Default 30 s. */
  timeoutMs?: number;
}

export interface ConsoleState {
  console_enabled: boolean;
  console_info: { type: string; url: string } | Record<string, never> | null;
}

export interface ProviderCall {
  event: 'start' | 'stop' | 'stop_all' | 'error';
  time: number;
  node?: string;
  app_name?: string;
  host?: string;
  port?: number;
  reason?: string;
}

export type GraphicalConsoleInterface = 'fake-graphical' | 'redfish-graphical';
export type SerialConsoleInterface = 'no-console' | 'fake' | 'ipmitool-socat';

export interface CreateVncNodeOptions {
  name?: string;
  vncHost: string;
  vncPort: number;
  /**
   * `fake-graphical` (default) on `fake-hardware`, or `redfish-graphical` on `redfish` with a
   * loopback `redfish_address` nothing answers on (enabling the console does not contact the BMC).
   */
  consoleInterface?: GraphicalConsoleInterface;
}

export interface CreateSerialNodeOptions {
  name?: string;
  /**
   * - `no-console` (default, `fake-hardware`): GET says disabled, PUT is refused with 400.
   * - `fake` (`fake-hardware`): enables; `console_info` is `{}` (no type, no url).
   * - `ipmitool-socat` (`ipmi`, in maintenance): enables a real socat on 127.0.0.1 in front of an
   *   `ipmitool sol activate` toward a loopback UDP port nothing answers on; `console_info` is
   *   `{"type": "socat", "url": "tcp://127.0.0.1:<port>"}`. Enabling takes a few seconds and each
   *   GET runs `ipmitool sol deactivate` (~2 s with this config's IPMI timings).
   */
  consoleInterface?: SerialConsoleInterface;
}

export interface StartRealIronicOptions extends EnsureChrootOptions {
  /** `[vnc] token_timeout` in seconds (Ironic's minimum is 10). Default 600. */
  tokenTimeoutS?: number;
  /** `[vnc] expire_console_session_interval` in seconds. Default 120 (Ironic's default). */
  expireConsoleSessionIntervalS?: number;
  /**
   * `[vnc] public_url`. Default `http://127.0.0.1:<Ironic's noVNC proxy port>/vnc_lite.html`.
   * Note Debian's novnc package ships vnc.html and vnc_auto.html, not vnc_lite.html: the default
   * URL is only a URL prefix, not a page Ironic's proxy serves here.
   */
  publicUrl?: (novncPort: number) => string;
  /** Extra `[section] key = value` lines, applied last. */
  extraConfig?: Readonly<Record<string, Readonly<Record<string, string | number | boolean>>>>;
  /** Ironic's own `debug`. Default false. */
  debug?: boolean;
  /** From spawn to the API answering, per attempt. Default 60 s. */
  startTimeoutMs?: number;
  registry?: ProcessRegistry;
}

export interface RealIronic extends Stoppable {
  /** `http://127.0.0.1:<api port>` */
  url: string;
  apiPort: number;
  /** Port of Ironic's own noVNC proxy (`[vnc] port`, 127.0.0.1). */
  novncPort: number;
  /** `[vnc] public_url`: console URLs are `<vncPublicUrl>?path=websockify%3Fnode%3D…%26token%3D…`. */
  vncPublicUrl: string;
  /** Host PID of the `ironic` process (PID 1 of its namespace). */
  pid: number;
  process: ManagedProcess;
  chroot: IronicChroot;
  /** Host path of the instance's state dir (config, sqlite, provider log); removed by stop(). */
  stateDir: string;
  config: string;
  minMicroversion: string;
  maxMicroversion: string;
  /** Spawn of `ironic` until the API answered (successful attempt). */
  startupMs: number;
  /** `ironic-dbsync create_schema`. */
  dbsyncMs: number;
  /**
   * `fetch(url + path)` with `X-OpenStack-Ironic-API-Version` (default IRONIC_MICROVERSION). An
   * object body is sent as JSON; a string body is sent as is (for malformed-JSON cases). Never
   * rejects on an HTTP status; rejects after `timeoutMs` (default 30 s).
   */
  api(method: string, path: string, body?: unknown, opts?: ApiOptions): Promise<IronicResponse>;
  /** Runs the real `baremetal` CLI (python3-ironicclient) in the chroot against this Ironic. */
  baremetal(args: readonly string[], opts?: { microversion?: string; timeoutMs?: number }): Promise<ChrootCommandResult>;
  createVncNode(opts: CreateVncNodeOptions): Promise<string>;
  createSerialNode(opts?: CreateSerialNodeOptions): Promise<string>;
  /** Polls `GET /v1/nodes/{uuid}/states/console` until `console_enabled === enabled`. */
  waitForConsole(uuid: string, enabled: boolean, opts?: { timeoutMs?: number; intervalMs?: number }): Promise<ConsoleState>;
  /** What our console container provider was asked, in order. */
  providerCalls(): Promise<ProviderCall[]>;
  /** Tail of Ironic's log. */
  output(): string;
  stop(): Promise<void>;
}

function iniText(sections: Record<string, Record<string, string | number | boolean>>): string {
  return Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${String(v)}`).join('\n')}\n`)
    .join('\n');
}

function ironicConfig(opts: StartRealIronicOptions, apiPort: number, novncPort: number, publicUrl: string): string {
  const sections: Record<string, Record<string, string | number | boolean>> = {
    DEFAULT: {
      my_ip: '127.0.0.1',
      host: 'vncgate-test-conductor',
      auth_strategy: 'noauth',
      rpc_transport: 'none',
      state_path: `${STATE_IN_CHROOT}/state`,
      tempdir: '/tmp',
      debug: opts.debug ?? false,
      use_stderr: true,
      // fake-hardware for graphical (fake-graphical) and "no console" nodes; ipmi for a real
      // serial console (ipmitool-socat); redfish for redfish-graphical. Each enabled hardware type
      // needs one enabled interface of every kind it supports, or the conductor refuses to start —
      // and the all-in-one process then hangs instead of exiting.
      enabled_hardware_types: 'fake-hardware,ipmi,redfish',
      enabled_console_interfaces: 'fake-graphical,no-console,fake,ipmitool-socat,redfish-graphical',
      enabled_boot_interfaces: 'fake,pxe',
      enabled_deploy_interfaces: 'fake,direct',
      enabled_management_interfaces: 'fake,ipmitool,redfish,noop',
      enabled_power_interfaces: 'fake,ipmitool,redfish',
      enabled_bios_interfaces: 'no-bios,fake',
      enabled_firmware_interfaces: 'no-firmware,fake',
      enabled_inspect_interfaces: 'no-inspect,fake',
      enabled_network_interfaces: 'noop',
      enabled_raid_interfaces: 'no-raid,fake',
      enabled_rescue_interfaces: 'no-rescue,fake',
      enabled_storage_interfaces: 'noop,fake',
      enabled_vendor_interfaces: 'no-vendor,fake',
      default_network_interface: 'noop',
    },
    api: { host_ip: '127.0.0.1', port: apiPort },
    conductor: { automated_clean: false },
    // The pxe boot interface (needed by ipmi/redfish) writes grub.cfg files at conductor start:
    // keep them in the instance's state dir, not in the shared chroot.
    pxe: {
      tftp_root: `${STATE_IN_CHROOT}/state/tftpboot`,
      tftp_master_path: `${STATE_IN_CHROOT}/state/tftpboot/master_images`,
      instance_master_path: `${STATE_IN_CHROOT}/state/master_images`,
    },
    deploy: { http_root: `${STATE_IN_CHROOT}/state/httpboot` },
    database: { connection: `sqlite:///${STATE_IN_CHROOT}/state/ironic.sqlite` },
    dhcp: { dhcp_provider: 'none' },
    oslo_concurrency: { lock_path: `${STATE_IN_CHROOT}/state/locks` },
    // ipmitool-socat: socat listens on loopback only; short IPMI timings so `sol deactivate`
    // against the absent BMC gives up in ~2 s instead of ~10 s.
    console: { socat_address: '127.0.0.1' },
    ipmi: { min_command_interval: 1, command_retry_timeout: 1 },
    vnc: {
      enabled: true,
      host_ip: '127.0.0.1',
      port: novncPort,
      public_url: publicUrl,
      novnc_web: '/usr/share/novnc',
      container_provider: TEST_PROVIDER_NAME,
      token_timeout: opts.tokenTimeoutS ?? 600,
      expire_console_session_interval: opts.expireConsoleSessionIntervalS ?? 120,
    },
  };
  for (const [name, kv] of Object.entries(opts.extraConfig ?? {})) sections[name] = { ...sections[name], ...kv };
  return iniText(sections);
}

/** Lines that mean the all-in-one process failed but will not exit by itself. */
const FATAL_STARTUP = /Failed to register hardware types|Successfully stopped conductor/;
const PORT_TAKEN = /Address already in use|Could not bind to|EADDRINUSE/;
const MAX_ATTEMPTS = 3;

/** The one child of `pid` (in-chroot.sh execs unshare, whose forked child is the command). */
function childOf(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    const first = text.split(/\s+/)[0];
    return first === undefined || first === '' ? undefined : Number(first);
  } catch {
    return undefined;
  }
}

async function fetchJson(url: string, method: string, body: unknown, opts: ApiOptions): Promise<IronicResponse> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  const mv = opts.microversion === undefined ? IRONIC_MICROVERSION : opts.microversion;
  if (mv !== null) headers['X-OpenStack-Ironic-API-Version'] = mv;
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(Math.ceil(opts.timeoutMs ?? 30_000)) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(url, init);
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

/** A UDP port nothing listens on right now (ipmitool-socat's absent BMC). */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

const uniqueName = (prefix: string): string => `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

export async function startRealIronic(opts: StartRealIronicOptions = {}): Promise<RealIronic> {
  const registry = opts.registry ?? defaultRegistry;
  const chroot = await ensureIronicChroot(opts);
  const stateDir = mkdtempSync(join(tmpdir(), 'vncgate-ironic-'));
  removeTempDirAtExit(stateDir);
  try {
    for (const sub of ['state', 'state/locks', '.cache']) mkdirSync(join(stateDir, sub), { recursive: true });
    // Our provider and its .dist-info on PYTHONPATH: importlib.metadata (stevedore) finds the
    // entry point there; the chroot itself stays untouched.
    cpSync(PROVIDER_DIR, join(stateDir, 'python'), { recursive: true });

    const failures: string[] = [];
    let dbsyncMs = -1;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const apiPort = await freePort();
      let novncPort = await freePort();
      while (novncPort === apiPort) novncPort = await freePort();
      const vncPublicUrl = opts.publicUrl?.(novncPort) ?? `http://127.0.0.1:${novncPort}/vnc_lite.html`;
      const config = ironicConfig(opts, apiPort, novncPort, vncPublicUrl);
      writeFileSync(join(stateDir, 'ironic.conf'), config);

      if (dbsyncMs < 0) {
        const r = await runInChroot(chroot.path, stateDir, {}, ['ironic-dbsync', '--config-file', `${STATE_IN_CHROOT}/ironic.conf`, 'create_schema'], 120_000);
        if (r.exitCode !== 0) throw new Error(`ironic-dbsync create_schema failed (exit ${String(r.exitCode ?? r.signal)}):\n${r.stderr}\n${r.stdout}`);
        dbsyncMs = r.durationMs;
      }

      const proc = await ManagedProcess.start({
        name: `ironic :${apiPort}`,
        command: IN_CHROOT,
        args: [
          chroot.path,
          stateDir,
          `PYTHONPATH=${STATE_IN_CHROOT}/python`,
          `VNCGATE_IRONIC_PROVIDER_LOG=${STATE_IN_CHROOT}/provider.jsonl`,
          'ironic',
          '--config-file',
          `${STATE_IN_CHROOT}/ironic.conf`,
        ],
        outputLimitBytes: 256 * 1024,
      });
      let ironicPid: number | undefined;
      const url = `http://127.0.0.1:${apiPort}`;
      let versions: IronicResponse | undefined;
      try {
        ({ ironicPid, versions } = await waitForApi(proc, url, apiPort, novncPort, opts.startTimeoutMs ?? 60_000));
      } catch (err) {
        await stopIronic(proc, childOf(proc.pid));
        if (PORT_TAKEN.test(proc.output())) {
          failures.push(`attempt ${attempt} (ports ${apiPort}, ${novncPort}): ${(err as Error).message.split('\n')[0] ?? ''}`);
          continue;
        }
        throw err;
      }
      const startupMs = performance.now() - proc.startedAt;
      const pid = ironicPid;

      let stopped: Promise<void> | undefined;
      const api = (method: string, path: string, body?: unknown, apiOpts: ApiOptions = {}): Promise<IronicResponse> =>
        fetchJson(`${url}${path}`, method, body, apiOpts);

      const createNode = async (body: Record<string, unknown>): Promise<string> => {
        const r = await api('POST', '/v1/nodes', body);
        const uuid = (r.json as { uuid?: unknown } | undefined)?.uuid;
        if (r.status !== 201 || typeof uuid !== 'string') throw new Error(`POST /v1/nodes: ${r.status} ${r.text}`);
        return uuid;
      };

      const ironic: RealIronic = {
        url,
        apiPort,
        novncPort,
        vncPublicUrl,
        pid,
        process: proc,
        chroot,
        stateDir,
        config,
        minMicroversion: versions.headers['x-openstack-ironic-api-minimum-version'] ?? 'unknown',
        maxMicroversion: versions.headers['x-openstack-ironic-api-maximum-version'] ?? 'unknown',
        startupMs,
        dbsyncMs,
        api,
        baremetal: (args, bmOpts = {}) =>
          runInChroot(
            chroot.path,
            stateDir,
            {
              OS_AUTH_TYPE: 'none',
              OS_ENDPOINT: url,
              ...(bmOpts.microversion !== undefined ? { OS_BAREMETAL_API_VERSION: bmOpts.microversion } : {}),
            },
            ['baremetal', ...args],
            bmOpts.timeoutMs ?? 60_000,
          ),
        createVncNode: async ({ name, vncHost, vncPort, consoleInterface = 'fake-graphical' }) => {
          const driverInfo: Record<string, unknown> = { [TEST_VNC_HOST_KEY]: vncHost, [TEST_VNC_PORT_KEY]: vncPort };
          if (consoleInterface === 'fake-graphical') {
            return createNode({ name: name ?? uniqueName('vnc'), driver: 'fake-hardware', console_interface: consoleInterface, driver_info: driverInfo });
          }
          // redfish: a loopback BMC address nothing answers on. Nodes stay in `enroll`, which the
          // power-state sync skips, so Ironic never contacts it.
          const bmcPort = await freePort();
          return createNode({
            name: name ?? uniqueName('redfish'),
            driver: 'redfish',
            console_interface: consoleInterface,
            boot_interface: 'pxe',
            deploy_interface: 'direct',
            driver_info: {
              ...driverInfo,
              redfish_address: `http://127.0.0.1:${bmcPort}`,
              redfish_system_id: '/redfish/v1/Systems/1',
              redfish_username: 'vncgate',
              redfish_password: 'not-a-secret',
            },
          });
        },
        createSerialNode: async ({ name, consoleInterface = 'no-console' } = {}) => {
          if (consoleInterface !== 'ipmitool-socat') {
            return createNode({ name: name ?? uniqueName('serial'), driver: 'fake-hardware', console_interface: consoleInterface });
          }
          const uuid = await createNode({
            name: name ?? uniqueName('ipmi'),
            driver: 'ipmi',
            console_interface: 'ipmitool-socat',
            boot_interface: 'pxe',
            deploy_interface: 'direct',
            driver_info: {
              ipmi_address: '127.0.0.1',
              ipmi_port: await freeUdpPort(),
              ipmi_username: 'vncgate',
              ipmi_password: 'not-a-secret',
              ipmi_terminal_port: await freePort(),
            },
          });
          // Belt and braces next to `enroll`: no periodic task may talk IPMI to it.
          const r = await api('PATCH', `/v1/nodes/${uuid}`, [{ op: 'replace', path: '/maintenance', value: true }]);
          if (r.status !== 200) throw new Error(`PATCH maintenance: ${r.status} ${r.text}`);
          return uuid;
        },
        waitForConsole: async (uuid, enabled, waitOpts = {}) => {
          const timeoutMs = waitOpts.timeoutMs ?? 30_000;
          const deadline = performance.now() + timeoutMs;
          let last = '';
          for (;;) {
            const r = await api('GET', `/v1/nodes/${uuid}/states/console`, undefined, { timeoutMs: Math.max(1000, deadline - performance.now()) });
            last = `${r.status} ${r.text}`;
            const state = r.json as ConsoleState | undefined;
            if (r.status === 200 && state?.console_enabled === enabled) return state;
            if (r.status !== 200 || performance.now() >= deadline) {
              const node = await api('GET', `/v1/nodes/${uuid}?fields=last_error,console_enabled,reservation`).catch(() => undefined);
              throw new Error(
                `console of ${uuid} not ${enabled ? 'enabled' : 'disabled'} within ${timeoutMs} ms; last GET: ${last}; node: ${node?.text ?? '?'}`,
              );
            }
            await sleep(waitOpts.intervalMs ?? 100);
          }
        },
        providerCalls: async () => {
          const text = await readFile(join(stateDir, 'provider.jsonl'), 'utf8').catch(() => '');
          return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as ProviderCall);
        },
        output: () => proc.output(),
        stop: () => {
          stopped ??= (async () => {
            registry.delete(ironic);
            try {
              await stopIronic(proc, pid);
            } finally {
              removeTempDir(stateDir);
            }
          })();
          return stopped;
        },
      };
      return registry.add(ironic);
    }
    throw new Error(`startRealIronic: no free ports after ${MAX_ATTEMPTS} attempts:\n${failures.join('\n')}`);
  } catch (err) {
    removeTempDir(stateDir);
    throw err;
  }
}

/**
 * Waits for GET /v1 to answer, then proves from /proc that the ironic process holds both ports and
 * listens on loopback only. Fails fast when the process exits or logs a fatal start-up error.
 */
async function waitForApi(
  proc: ManagedProcess,
  url: string,
  apiPort: number,
  novncPort: number,
  timeoutMs: number,
): Promise<{ ironicPid: number; versions: IronicResponse }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw new Error(`ironic exited during start-up: ${proc.describe()}`);
    if (FATAL_STARTUP.test(proc.output())) throw new Error(`ironic failed to start (it would hang, not exit): ${proc.describe()}`);
    const ironicPid = childOf(proc.pid);
    if (ironicPid !== undefined) {
      const versions = await fetchJson(`${url}/v1`, 'GET', undefined, { timeoutMs: 2000 }).catch(() => undefined);
      if (versions?.status === 200) {
        const sockets = listeningSocketsOf(ironicPid);
        const exposed = sockets.filter((s) => !isLoopback(s.address));
        if (exposed.length > 0) {
          throw new Error(`ironic listens beyond loopback: ${exposed.map((s) => `${s.address}:${s.port}`).join(', ')}`);
        }
        const ports = new Set(sockets.map((s) => s.port));
        if (ports.has(apiPort) && ports.has(novncPort)) return { ironicPid, versions };
        // The API answered but it is not our process, or the noVNC proxy is not up yet.
      }
    }
    if (performance.now() >= deadline) throw new Error(`ironic API not up on ${url} within ${timeoutMs} ms: ${proc.describe()}`);
    await sleep(100);
  }
}

/**
 * SIGTERM to `ironic` itself (unshare blocks SIGTERM while it waits), so oslo.service shuts down
 * and unshare reaps it and exits; then SIGKILL to `ironic`; last, SIGKILL to unshare, whose
 * --kill-child takes the PID namespace down. Only PIDs we spawned (unshare) or its direct child,
 * and only while unshare is alive, so the child PID cannot have been recycled.
 */
async function stopIronic(proc: ManagedProcess, ironicPid: number | undefined): Promise<void> {
  const signalChild = (sig: NodeJS.Signals): void => {
    if (ironicPid === undefined || !proc.running) return;
    try {
      process.kill(ironicPid, sig);
    } catch {
      // already gone
    }
  };
  signalChild('SIGTERM');
  if (await settles(proc.exited, 15_000)) return;
  signalChild('SIGKILL');
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
