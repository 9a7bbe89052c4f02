/**
 * What recording costs the relay: one session's throughput through the built `vncgate serve` (a
 * child process of its own) from a flooding RFB server to a WebSocket client, with the session's
 * profile recording (recordings.dir on the local disk) and not, interleaved over rounds; medians
 * and the ratio on/off of the same run. Also prints how much the recordings held.
 *
 *   npx tsx scripts/bench-recording.mts [--rounds 5] [--mib 256]
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { startTinyVncServer } from '../test/support/tiny-vnc-server.js';
import { startVncgateServe } from '../test/support/vncgate-process.js';
import { stopAll } from '../test/support/proc.js';
import { wsRfbConnect } from '../test/support/ws-rfb-client.js';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, mib: { type: 'string', default: '256' } } });
const rounds = Number(args.rounds);
const bytes = Number(args.mib) * 1024 * 1024;
const SECRET = 'bench-recording-secret-of-at-least-32-bytes';

const dir = mkdtempSync(join(tmpdir(), 'vncgate-bench-rec-'));
const recDir = join(dir, 'rec');
writeFileSync(join(dir, 'jwt.secret'), SECRET);
writeFileSync(
  join(dir, 'vncgate.yaml'),
  [
    'backends:',
    '  allowedTargets: ["127.0.0.0/8"]',
    '  profiles:',
    '    plain: {security: [none]}',
    '    audited: {security: [none], record: true}',
    'recordings:',
    `  dir: ${JSON.stringify(recDir)}`,
    `  maxBytesPerRecording: ${4 * bytes}`,
    '  queueBytes: 67108864',
    'api:',
    `  jwt: {hs256SecretFile: ${JSON.stringify(join(dir, 'jwt.secret'))}, issuer: bench, audience: vncgate}`,
    '',
  ].join('\n'),
);
const backend = await startTinyVncServer({ after: 'flood' });
const gate = await startVncgateServe({ name: 'vncgate (bench)', args: ['--config', join(dir, 'vncgate.yaml')], env: { VNCGATE_PLAIN_HTTP: 'true', VNCGATE_LOG_LEVEL: 'warn' } });

async function mint(profile: string): Promise<string> {
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('bench').setAudience('vncgate').setSubject('bench').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
  const r = await fetch(new URL('/v1/console-tokens', gate.baseUrl), { method: 'POST', headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, body: JSON.stringify({ target: `127.0.0.1:${backend.port}`, profile }) });
  return ((await r.json()) as { token: string }).token;
}

/** MiB/s of one session until `bytes` have arrived. */
async function run(profile: string): Promise<number> {
  const r = await wsRfbConnect(`${gate.wsBase}/?token=${await mint(profile)}`, { timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`refused: ${r.code}`);
  const t0 = performance.now();
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no throughput in 120 s')), 120_000);
    r.ws.on('message', (d: Buffer) => {
      n += d.length;
      if (n >= bytes) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const mibs = n / 1024 / 1024 / ((performance.now() - t0) / 1000);
  r.ws.terminate();
  return mibs;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const off: number[] = [];
const on: number[] = [];
for (let i = 0; i < rounds; i++) {
  off.push(await run('plain'));
  on.push(await run('audited'));
  process.stderr.write(`round ${i + 1}: off ${off.at(-1)!.toFixed(0)} MiB/s, on ${on.at(-1)!.toFixed(0)} MiB/s\n`);
}
await new Promise((resolve) => setTimeout(resolve, 1_000));
const files = readdirSync(recDir).map((f) => statSync(join(recDir, f)).size);
console.log(`one session, ${args.mib} MiB from a flooding server, ${rounds} rounds (medians)`);
console.log(`recording off: ${median(off).toFixed(0)} MiB/s`);
console.log(`recording on:  ${median(on).toFixed(0)} MiB/s  (ratio on/off ${(median(on) / median(off)).toFixed(2)})`);
console.log(`recordings: ${files.length}, MiB each: ${files.map((s) => (s / 1024 / 1024).toFixed(0)).join(', ')}`);
const truncated = gate.logLines().filter((l) => l.includes('recording failed')).length;
console.log(`recordings stopped early (queue full, disk slower than the session): ${truncated}`);
await stopAll();
await backend.close();
rmSync(dir, { recursive: true, force: true });
