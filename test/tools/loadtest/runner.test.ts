import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadtestCommand } from '../../../tools/cli/loadtest.js';
import { UsageError, type CliIo } from '../../../src/cli/io.js';
import { ApiTokenSource, type TokenSource } from '../../../tools/loadtest/token-source.js';
import { readCpuIdle } from '../../../tools/loadtest/cpuidle.js';
import { MemoryFloor } from '../../../tools/loadtest/meminfo.js';
import { formatReport } from '../../../tools/loadtest/report.js';
import { ProcSampler } from '../../../tools/loadtest/proc-sampler.js';
import { WARMUP_EXCHANGES, runLoadtest, type LoadtestOptions } from '../../../tools/loadtest/runner.js';
import { wsConnector } from '../../../tools/loadtest/ws-client.js';
import { createLogger } from '../../../src/log.js';
import type { VncgateServer } from '../../../src/proxy/server.js';
import { startSyntheticServer, type SyntheticServer } from '../../../tools/synthetic/index.js';
import { TEST_JWT_SECRET, startInProcess, testJwtSecretFile } from '../../support/in-process.js';

/** The whole path, in one process: load tester → vncgate (real server, memory tokens) → synthetic RFB server. */
const SECRET = TEST_JWT_SECRET;
const secretFile = testJwtSecretFile();

let srv: VncgateServer;
let pingpong: SyntheticServer;
let stream: SyntheticServer;
let base: string;

beforeAll(async () => {
  pingpong = await startSyntheticServer({ mode: 'pingpong' });
  stream = await startSyntheticServer({ mode: 'stream', streamUpdateBytes: 64 * 1024 });
  ({ srv } = await startInProcess({ overrides: { api: { jwt: { issuer: 'loadtest' } } } }));
  base = `http://${srv.addresses[0]}`;
});
afterAll(async () => {
  await srv.close();
  await pingpong.close();
  await stream.close();
});

function apiTokens(server: SyntheticServer): ApiTokenSource {
  return new ApiTokenSource({
    apiUrl: base,
    jwtSecret: Buffer.from(SECRET),
    issuer: 'loadtest',
    audience: 'vncgate',
    target: { host: '127.0.0.1', port: server.port },
    ttlSeconds: 60,
  });
}

function options(over: Partial<LoadtestOptions> & Pick<LoadtestOptions, 'mode' | 'tokens'>): LoadtestOptions {
  return {
    label: base,
    connect: (token) => wsConnector({ url: `${base.replace('http', 'ws')}/websockify?token=${token ?? ''}`, timeoutMs: 5_000 }),
    sessions: 1,
    concurrency: 1,
    durationMs: 300,
    updatesPerSession: 0,
    pipeline: 1,
    security: ['none'],
    setupTimeoutMs: 5_000,
    updateTimeoutMs: 5_000,
    verify: true,
    memFloor: new MemoryFloor(0),
    sampler: null,
    ...over,
  };
}

describe('runLoadtest through vncgate', () => {
  it('setup: fresh API tokens, one per session, with round trips, RSS and CPU of the proxy (this process)', async () => {
    const tokens = apiTokens(pingpong);
    const r = await runLoadtest(
      options({ mode: 'setup', tokens, sessions: 20, concurrency: 2, updatesPerSession: 3, sampler: new ProcSampler(process.pid), durationMs: 60_000 }),
    );
    expect(r.errors).toEqual({});
    expect(r.stoppedBy).toBe('completed');
    expect(r.sessions).toMatchObject({ requested: 20, started: 20, established: 20, failed: 0 });
    expect(r.tokens).toMatchObject({ source: 'api', minted: 20 });
    expect(r.setup.perSecond).toBeGreaterThan(0);
    expect(r.setup.p50Ms).toBeGreaterThan(0);
    expect(r.rtt?.samples).toBe(60);
    expect(r.vncgate?.cpuMsPerSession).toBeGreaterThan(0);
    expect(r.vncgate?.rssBeforeKiB).toBeGreaterThan(0);
  });

  it('reports how the machine\'s idle CPUs wait, in the result and in the human table', async () => {
    // Not this machine's own setting, so the override is seen to be used.
    const cpuidle = { driver: 'acpi_idle', governor: 'menu', haltPollNs: 0 };
    const r = await runLoadtest(options({ mode: 'pingpong', tokens: apiTokens(pingpong), durationMs: 200, cpuIdle: () => cpuidle }));
    expect(r.sessions.failed).toBe(0);
    expect(r.machine).toEqual({ cpuidle });
    expect(formatReport(r)).toMatch(/\n {2}idle CPUs +cpuidle acpi_idle\/menu, guest halt polling off \(every wake-up of an idle vCPU exits to the hypervisor\)/);
  });

  it('warm-up: sessions before the clock reach the console, with their own tokens, and stay out of every figure', async () => {
    const server = await startSyntheticServer({ mode: 'pingpong' });
    try {
      const tokens = apiTokens(server);
      const r = await runLoadtest(
        options({
          mode: 'setup',
          tokens,
          sessions: 5,
          warmupSessions: 3,
          durationMs: 60_000,
        }),
      );
      expect(r.errors).toEqual({});
      expect(r.warmup).toEqual({ sessions: 3, failed: 0 });
      expect(r.sessions).toMatchObject({ requested: 5, started: 5, established: 5, failed: 0 });
      expect(r.tokens.minted).toBe(8);
      expect(r.rtt).toBeNull(); // the warm-up's round trips are not figures of the run
      const st = server.stats();
      expect(st.connectionsAccepted).toBe(8); // every warm-up session went all the way to the console
      expect(st.updatesSent).toBe(3 * WARMUP_EXCHANGES);
    } finally {
      await server.close();
    }
  });

  it('warm-up: a failed warm-up session is reported as such and the run goes on', async () => {
    const real = apiTokens(pingpong);
    let first = true;
    const tokens: TokenSource = {
      kind: 'api',
      plan: (n) => real.plan(n),
      prefill: (n) => real.prefill(n),
      take: async () => {
        if (!first) return real.take();
        first = false;
        return 'not-a-token-vncgate-ever-issued';
      },
      stats: () => real.stats(),
      close: () => real.close(),
    };
    const r = await runLoadtest(options({ mode: 'setup', tokens, sessions: 2, warmupSessions: 2, durationMs: 60_000 }));
    expect(r.warmup).toEqual({ sessions: 2, failed: 1 });
    expect(Object.keys(r.errors)).toEqual([expect.stringMatching(/^warmup-rfb-refused: /)]);
    expect(r.sessions).toMatchObject({ started: 2, established: 2, failed: 0 });
  });

  it('stream: every pixel byte through the proxy is checked', async () => {
    const r = await runLoadtest(options({ mode: 'stream', tokens: apiTokens(stream) }));
    expect(r.errors).toEqual({});
    expect(r.throughput!.payloadBytes).toBeGreaterThan(0);
    expect(r.throughput!.payloadBytes % (64 * 1024)).toBe(0);
  });

  it('idle: sessions are held open together, then closed', async () => {
    let during = 0;
    const r = await runLoadtest(
      options({
        mode: 'idle',
        tokens: apiTokens(pingpong),
        sessions: 10,
        concurrency: 4,
        durationMs: 300,
        sampler: new ProcSampler(process.pid),
        onProgress: (p) => {
          if (p.phase === 'holding') during = Math.max(during, srv.registry.size);
        },
      }),
    );
    expect(r.errors).toEqual({});
    expect(r.sessions.peakConcurrent).toBe(10);
    expect(during).toBe(10);
    expect(r.vncgate?.rssPerSessionKiB).not.toBeNull();
  });

  it('reports errors by reason: a token used twice is refused with the reason noVNC would show', async () => {
    const minted = apiTokens(pingpong);
    await minted.prefill(1);
    const once = await minted.take();
    const reused: TokenSource = {
      kind: 'api',
      plan: () => {},
      prefill: async () => {},
      take: async () => once,
      stats: () => ({ minted: 1, mintMs: 0, requests: 1 }),
      close: async () => {},
    };
    const r = await runLoadtest(options({ mode: 'setup', tokens: reused, sessions: 2, durationMs: 60_000 }));
    expect(r.sessions).toMatchObject({ established: 1, failed: 1 });
    expect(r.errors).toEqual({ 'rfb-refused: This console link has expired or was already used - request a new one': 1 });
  });

  it('stops opening sessions while MemAvailable is below the floor, and says so', async () => {
    const notices: string[] = [];
    const r = await runLoadtest(
      options({
        mode: 'setup',
        tokens: apiTokens(pingpong),
        sessions: 5,
        durationMs: 60_000,
        memFloor: new MemoryFloor(2 ** 40, { read: () => 2 ** 30, intervalMs: 0 }),
        onNotice: (l) => notices.push(l),
      }),
    );
    expect(r.stoppedBy).toBe('memory-floor');
    expect(r.sessions.started).toBe(0);
    expect(r.memory).toMatchObject({ floorHit: true, floorMiB: 1024 * 1024, minAvailableMiB: 1024 });
    expect(notices.join('\n')).toMatch(/MemAvailable 1024 MiB is below the floor of 1048576 MiB: stopped opening sessions after 0/);
  });
});

describe('vncgate loadtest (the command)', () => {
  function io(): CliIo & { outs: unknown[]; errs: string[] } {
    const outs: unknown[] = [];
    const errs: string[] = [];
    return { outs, errs, out: (v) => outs.push(v), err: (l) => errs.push(l), log: createLogger({ level: 'silent' }) };
  }

  it('measures plain RFB straight to a server and prints one JSON result', async () => {
    const c = io();
    const code = await loadtestCommand(['--url', 'direct', '--backend', `127.0.0.1:${pingpong.port}`, '--mode', 'pingpong', '--duration', '0.3', '--json'], c);
    expect(code).toBe(0);
    expect(c.outs).toHaveLength(1);
    expect(c.outs[0]).toMatchObject({ mode: 'pingpong', sessions: { established: 1, failed: 0 } });
    expect((c.outs[0] as { rtt: { samples: number } }).rtt.samples).toBeGreaterThan(0);
    // Without an override, the setting is this machine's own.
    expect((c.outs[0] as { machine: unknown }).machine).toEqual({ cpuidle: readCpuIdle() });
  });

  it('drives sessions through vncgate with tokens from its API, and exits 1 when a session fails', async () => {
    const c = io();
    const args = ['--url', `${base.replace('http', 'ws')}/`, '--backend', `127.0.0.1:${pingpong.port}`, '--jwt-secret-file', secretFile, '--jwt-issuer', 'loadtest', '--jwt-audience', 'vncgate'];
    expect(await loadtestCommand([...args, '--mode', 'setup', '--sessions', '5', '--warmup', '2', '--json'], c)).toBe(0);
    expect(c.outs[0]).toMatchObject({ sessions: { established: 5 }, warmup: { sessions: 2, failed: 0 }, tokens: { source: 'api', minted: 7 } });
    const bad = io();
    expect(await loadtestCommand([...args.slice(0, 4), '--jwt-secret-file', secretFile, '--jwt-issuer', 'someone-else', '--jwt-audience', 'vncgate', '--json'], bad)).toBe(1);
    expect(Object.keys((bad.outs[0] as { errors: Record<string, number> }).errors)[0]).toMatch(/^token-api-401/);
  });

  it('refuses bad usage', async () => {
    await expect(loadtestCommand(['--mode', 'stream'], io())).rejects.toBeInstanceOf(UsageError);
    await expect(loadtestCommand(['--url', 'ws://127.0.0.1:1/'], io())).rejects.toBeInstanceOf(UsageError);
    await expect(loadtestCommand(['--url', 'direct', '--mode', 'sideways'], io())).rejects.toBeInstanceOf(UsageError);
    await expect(loadtestCommand(['--url', 'direct', '--warmup', 'many'], io())).rejects.toBeInstanceOf(UsageError);
  });
});
