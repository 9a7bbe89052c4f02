import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';

/**
 * deploy/systemd (issue 17): the unit is one systemd itself accepts, its sandbox scores as systemd
 * rates it, and its timeouts and limits fit vncgate's defaults (drain time, connection limit).
 * Needs systemd-analyze (systemd 252 or later, for `security --offline`).
 */
const unitPath = new URL('../../deploy/systemd/vncgate.service', import.meta.url).pathname;
const unitText = readFileSync(unitPath, 'utf8');
const sysusers = readFileSync(new URL('../../deploy/systemd/vncgate.sysusers.conf', import.meta.url), 'utf8');
const defaults = loadConfig({ env: {}, overrides: { tls: { plainHttp: true } } }).raw;

/** The [Service] section: each key with every value it was given, in order. */
function serviceSection(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service') {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return keys;
}
const service = serviceSection(unitText);
const value = (key: string): string | undefined => service.get(key)?.at(-1);

/** systemd time spans as written here: "45s", "2min", "1min 30s", or bare seconds. */
function seconds(span: string): number {
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)(s|sec|min|m)?$/.exec(part);
    if (!m) throw new Error(`unsupported time span ${span}`);
    total += Number(m[1]) * (m[2] === 'min' || m[2] === 'm' ? 60 : 1);
  }
  return total;
}

function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', cwd: tmpdir() });
  if (r.error) throw new Error(`cannot run systemd-analyze: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const scratch = mkdtempSync(join(tmpdir(), 'vncgate-systemd-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy whose ExecStart runs a binary this machine has: verify checks that it exists. */
function runnableCopy(text: string): string {
  const file = join(scratch, 'vncgate.service');
  writeFileSync(file, text.replace(/^ExecStart=\S+/m, 'ExecStart=/usr/bin/true'));
  return file;
}

describe('deploy/systemd/vncgate.service', () => {
  it('passes systemd-analyze verify without a single warning', () => {
    const r = analyze(['verify', runnableCopy(unitText)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('verify would report a misspelt directive (the check above can fail)', () => {
    const r = analyze(['verify', runnableCopy(unitText.replace('ProtectSystem=', 'ProtectSystm='))]);
    expect(r.stderr).toMatch(/Unknown key .ProtectSystm./);
  });

  it('has an overall exposure of at most 2.0 ("OK") in systemd-analyze security', () => {
    const r = analyze(['security', '--offline=yes', unitPath]);
    expect(r.status).toBe(0);
    const m = /Overall exposure level for vncgate\.service: (\d+\.\d) (\w+)/.exec(r.stdout);
    expect(m, r.stdout.slice(-400)).not.toBeNull();
    console.log(`systemd-analyze security: exposure ${m![1]} ${m![2]}`);
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
    expect(m![2]).toBe('OK');
  });

  it('runs `vncgate serve` with the config in /etc/vncgate, as the sysusers user, in production mode', () => {
    expect(value('ExecStart')).toMatch(/^\/\S+\/vncgate serve --config \/etc\/vncgate\/vncgate\.yaml$/);
    expect(value('User')).toBe('vncgate');
    expect(sysusers).toMatch(/^u vncgate - /m);
    expect(service.get('Environment')).toContain('NODE_ENV=production');
  });

  it('gives the drain time to finish before systemd kills, and reloads certificates on SIGHUP', () => {
    expect(value('KillSignal')).toBe('SIGTERM');
    // The drain's deadline counts from the end of the readiness grace.
    expect(seconds(value('TimeoutStopSec')!) * 1000).toBeGreaterThan(defaults.shutdown.readinessGraceMs + defaults.shutdown.drainTimeoutMs);
    expect(value('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(value('Restart')).toBe('on-failure');
  });

  it('allows a descriptor for every client connection and its console endpoint, with headroom', () => {
    expect(Number(value('LimitNOFILE'))).toBeGreaterThanOrEqual(2 * defaults.limits.maxConnections + 1024);
  });

  it('sandboxes the process, but leaves V8 its writable executable memory', () => {
    for (const [key, v] of Object.entries({
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectKernelLogs: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
    })) {
      expect(value(key), key).toBe(v);
    }
    expect(service.get('SystemCallFilter')?.[0]).toBe('@system-service');
    // The JIT writes machine code and then runs it: MemoryDenyWriteExecute=yes makes Node abort.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });
});
