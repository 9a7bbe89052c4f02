/**
 * Shared console figures (issue 18): what each extra viewer of one shared backend connection
 * costs, and what the shared encodings cost against an ordinary noVNC session.
 *
 *   npm run build && npx tsx scripts/bench-shared.mts [--viewers 1,2,4,8,16,32] [--seconds 10] [--interval 250] [--chromium]
 *
 * A real TigerVNC Xvnc (640x480) whose root window is re-tiled every --interval ms with a random
 * 32x32 bitmap in random colours (xsetroot -bitmap): every frame changes the whole screen with
 * detail no encoding removes. The built `vncgate serve` (tokens in a real redis-server) shares it
 * (`sharing: true`). For each viewer count, that many viewers (test/support/rfb-viewer.ts: noVNC's
 * pixel format and update loop, framing only, no decoding) watch for --seconds: bytes per second
 * out of vncgate to all viewers, per viewer, updates per second per viewer (slowest and fastest),
 * vncgate's and Xvnc's CPU (from /proc, % of one core), and Xvnc's client connections.
 *
 * --chromium: the same scene in real Chromium with vncgate's page (real noVNC), one page on an
 * unshared profile (noVNC's own encodings: Tight, ZRLE…), then one on the shared profile (Hextile,
 * RRE, CopyRect, Raw): bytes per second each, from vncgate's "session ended" log lines.
 * Prints the table on stdout; progress on stderr.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launchChromium } from '../test/support/browser.js';
import { runVncgate } from '../test/support/cli.js';
import { runCommand, sleep, stopAll } from '../test/support/proc.js';
import { startRedisServer } from '../test/support/redis.js';
import { TestViewer } from '../test/support/rfb-viewer.js';
import { startVncgateServe } from '../test/support/vncgate-process.js';
import { startXvnc } from '../test/support/xvnc.js';

const { values } = parseArgs({
  options: { viewers: { type: 'string', default: '1,2,4,8,16,32' }, seconds: { type: 'string', default: '10' }, interval: { type: 'string', default: '250' }, chromium: { type: 'boolean', default: false }, scene: { type: 'string', default: 'noise' } },
});
const COUNTS = values.viewers.split(',').map(Number);
const SECONDS = Number(values.seconds);
const INTERVAL_MS = Number(values.interval);
/** noise: one 640x480 random two-colour bitmap (nothing repeats); tiles: a random 32x32 bitmap tiled (zlib finds the repeats, Hextile cannot). */
const SCENE = values.scene === 'tiles' ? 'tiles' : 'noise';
const TILE = SCENE === 'tiles' ? { w: 32, h: 32 } : { w: 640, h: 480 };
const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const dir = await mkdtemp(join(tmpdir(), 'vncgate-bench-shared-'));
const redis = await startRedisServer();
const xvnc = await startXvnc({ securityTypes: ['None'], geometry: '640x480', desktopName: 'bench-shared' });
const display = { ...process.env, DISPLAY: `:${xvnc.display}` };
const config = join(dir, 'vncgate.yaml');
await writeFile(
  config,
  ['backends:', '  allowedTargets: ["127.0.0.0/8"]', '  profiles:', '    shared:', '      security: [none]', '      sharing: true', '    solo:', '      security: [none]', ''].join('\n'),
);
const env = { VNCGATE_CONFIG: config, VNCGATE_PLAIN_HTTP: 'true', VNCGATE_REDIS_URL: redis.url, VNCGATE_LOG_LEVEL: 'info' };
const vncgate = await startVncgateServe({ env, outputLimitBytes: 256 * 2 ** 20 });

// The scene: random 32x32 bitmaps, re-tiled over the root window in random colours.
const bitmaps: string[] = [];
for (let i = 0; i < 16; i++) {
  const bits = [...randomBytes((TILE.w / 8) * TILE.h)].map((b) => `0x${b.toString(16).padStart(2, '0')}`).join(', ');
  const file = join(dir, `tile${i}.xbm`);
  await writeFile(file, `#define t_width ${TILE.w}\n#define t_height ${TILE.h}\nstatic unsigned char t_bits[] = {\n   ${bits} };\n`);
  bitmaps.push(file);
}
let scene = true;
const sceneDone = (async () => {
  for (let i = 0; scene; i++) {
    const colour = (): string => `#${randomBytes(3).toString('hex')}`;
    await runCommand('xsetroot', ['-bitmap', bitmaps[i % bitmaps.length]!, '-fg', colour(), '-bg', colour()], { env: display });
    await sleep(INTERVAL_MS);
  }
})();

async function links(profile: string, n: number): Promise<{ token: string; url: string }[]> {
  const r = await runVncgate(['token', 'create', '--target', `127.0.0.1:${xvnc.port}`, '--profile', profile, '--count', String(n)], {
    env: { ...env, VNCGATE_PUBLIC_URL: vncgate.baseUrl, VNCGATE_LOG_LEVEL: 'warn' },
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new Error(r.stderr);
  return r.json as { token: string; url: string }[];
}

async function xvncClients(): Promise<number> {
  const r = await runCommand('ss', ['-tnH', 'state', 'established', `( sport = :${xvnc.port} )`]);
  return r.stdout.toString().split('\n').filter((l) => l.trim() !== '').length;
}

type Row = { viewers: number; outMBps: number; perViewerMBps: number; updMin: number; updMax: number; vncgateCpu: number; xvncCpu: number; xvncClients: number; ended: number };
const rows: Row[] = [];
for (const n of COUNTS) {
  const minted = await links('shared', n);
  const viewers = await Promise.all(
    minted.map(({ token }) => TestViewer.connect(`${vncgate.wsBase}/websockify?token=${encodeURIComponent(token)}`, { decode: false, timeoutMs: 30_000 })),
  );
  await sleep(2_000);
  const clients = await xvncClients();
  const b0 = viewers.map((v) => v.bytes);
  const u0 = viewers.map((v) => v.updates);
  const c0 = [cpuSeconds(vncgate.pid), cpuSeconds(xvnc.pid)];
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const dt = (performance.now() - t0) / 1000;
  const c1 = [cpuSeconds(vncgate.pid), cpuSeconds(xvnc.pid)];
  const bytes = viewers.reduce((s, v, i) => s + v.bytes - b0[i]!, 0);
  const ups = viewers.map((v, i) => (v.updates - u0[i]!) / dt);
  const ended = viewers.filter((v) => v.closeCode !== null).length;
  const row: Row = {
    viewers: n,
    outMBps: bytes / dt / 1e6,
    perViewerMBps: bytes / dt / 1e6 / n,
    updMin: Math.min(...ups),
    updMax: Math.max(...ups),
    vncgateCpu: ((c1[0]! - c0[0]!) / dt) * 100,
    xvncCpu: ((c1[1]! - c0[1]!) / dt) * 100,
    xvncClients: clients,
    ended,
  };
  rows.push(row);
  log(`viewers ${n}: ${JSON.stringify(row)}`);
  await Promise.all(viewers.map((v) => v.close()));
  for (let i = 0; i < 50 && (await xvncClients()) > 0; i++) await sleep(100);
}

const base = rows[0]!;
console.log(`Shared console, Xvnc 640x480, scene ${SCENE}: whole screen redrawn every ${INTERVAL_MS} ms, ${SECONDS} s per row (node ${process.version})`);
console.log('| viewers | MB/s out (all) | MB/s per viewer | updates/s per viewer (min-max) | vncgate CPU % | vncgate CPU % per extra viewer | Xvnc CPU % | Xvnc clients | viewers ended |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const extra = r.viewers > base.viewers ? ((r.vncgateCpu - base.vncgateCpu) / (r.viewers - base.viewers)).toFixed(2) : '-';
  console.log(`| ${r.viewers} | ${r.outMBps.toFixed(2)} | ${r.perViewerMBps.toFixed(2)} | ${r.updMin.toFixed(1)}-${r.updMax.toFixed(1)} | ${r.vncgateCpu.toFixed(1)} | ${extra} | ${r.xvncCpu.toFixed(1)} | ${r.xvncClients} | ${r.ended} |`);
}

if (values.chromium) {
  const browser = await launchChromium();
  const measured: { profile: string; bytesPerSecond: number }[] = [];
  for (const profile of ['solo', 'shared']) {
    const [minted] = await links(profile, 1);
    const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    const before = vncgate.logLines().filter((x) => x.includes('"session ended"')).length;
    await page.goto(minted!.url);
    await page.locator('#status-text', { hasText: 'Connected to bench-shared' }).waitFor({ timeout: 20_000 });
    await sleep(SECONDS * 1000);
    await page.close();
    const line = await (async () => {
      for (let i = 0; i < 50; i++) {
        const l = vncgate
          .logLines()
          .filter((x) => x.includes('"session ended"'))
          .slice(before)
          .map((x) => JSON.parse(x) as { bytesToBrowser: number; durationMs: number; shared?: unknown })
          .at(-1);
        if (l) return l;
        await sleep(100);
      }
      throw new Error('no session ended line');
    })();
    measured.push({ profile, bytesPerSecond: line.bytesToBrowser / (line.durationMs / 1000) });
    log(`chromium ${profile}: ${JSON.stringify(line)}`);
  }
  await browser.close();
  const [solo, shared] = measured;
  console.log('');
  console.log('| one Chromium page (real noVNC), same scene | MB/s to the browser |');
  console.log('|---|---|');
  console.log(`| unshared (noVNC's encodings) | ${(solo!.bytesPerSecond / 1e6).toFixed(2)} |`);
  console.log(`| shared (Hextile, RRE, CopyRect, Raw) | ${(shared!.bytesPerSecond / 1e6).toFixed(2)} (${(shared!.bytesPerSecond / solo!.bytesPerSecond).toFixed(2)}x) |`);
}

scene = false;
await sceneDone;
await stopAll();
await redis.dispose();
await rm(dir, { recursive: true, force: true });
