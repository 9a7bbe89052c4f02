/**
 * x11vnc 0.9.16 (LibVNCServer) as a third RFB implementation, sharing the X display of a private
 * Xvnc. Its use here: a real peer that can announce RFB 3.3 or 3.7 (`-rfbversion`), which neither
 * Xvnc nor QEMU does. Only None and VncAuth are wired up; x11vnc's -ssl/VeNCrypt/ANONTLS modes
 * are not.
 *
 * Offers: without password types [1], with `-rfbauth` types [2]; under 3.3 the server instead
 * sends that one type as a U32 (RFC 6143 §7.1.2, "Version 3.3").
 *
 * Loopback only needs care: this Debian build listens on IPv6 by default (X11VNC_LISTEN6), and
 * LibVNCServer adds its own IPv6 listener on [::]:5900 — all interfaces — unless `-rfbportv6 -1`;
 * `-no6` alone does not remove it. `waitForListening` would refuse to continue if one appeared.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ManagedProcess,
  ProcessRegistry,
  defaultRegistry,
  removeTempDir,
  removeTempDirAtExit,
  runCommand,
  type Stoppable,
} from './proc.js';
import { freePort, waitForListening } from './ports.js';
import { RFB_SECURITY_TYPE, startXvnc, type ExpectedOffer, type XvncServer } from './xvnc.js';

export type RfbVersionString = '3.3' | '3.7' | '3.8';

export interface X11vncOptions {
  /** Enables VncAuth via an `-rfbauth` file made with `vncpasswd -f`. */
  password?: string;
  /** What the server announces. Default 3.8. */
  rfbVersion?: RfbVersionString;
  /** Default `vncgate-x11vnc-<display>`. */
  desktopName?: string;
  /** Of the backing X display. Default 1024x768. */
  geometry?: string;
  extraArgs?: readonly string[];
  registry?: ProcessRegistry;
  /** Per attempt. Default 15 s. */
  startTimeoutMs?: number;
}

export interface X11vncServer extends Stoppable {
  host: string;
  port: number;
  desktopName: string;
  pid: number;
  password: string | undefined;
  rfbVersion: RfbVersionString;
  /** The 12-byte banner the server sends. */
  banner: string;
  /** Under 3.3 `types` holds the single U32 type the server sends. */
  expected: ExpectedOffer;
  /** The Xvnc whose display x11vnc exports (its own RFB port is loopback-only, type None). */
  xvnc: XvncServer;
  process: ManagedProcess;
  /** Password files and the like; removed by stop(). */
  tempDir: string;
  /** x11vnc alone, spawn until listening. */
  startupMs: number;
  attempts: number;
  stop(): Promise<void>;
}

const MAX_ATTEMPTS = 6;
const RETRYABLE = /could not obtain listening port|Address already in use/;

export async function startX11vnc(opts: X11vncOptions = {}): Promise<X11vncServer> {
  const registry = opts.registry ?? defaultRegistry;
  const host = '127.0.0.1';
  const rfbVersion = opts.rfbVersion ?? '3.8';
  const dir = await mkdtemp(join(tmpdir(), 'vncgate-x11vnc-'));
  removeTempDirAtExit(dir);
  // Private registry: this handle stops its Xvnc itself, after x11vnc.
  const xvnc = await startXvnc({
    securityTypes: ['None'],
    registry: new ProcessRegistry(),
    ...(opts.geometry !== undefined ? { geometry: opts.geometry } : {}),
  }).catch((err: unknown) => {
    removeTempDir(dir);
    throw err;
  });
  try {
    const authArgs: string[] = ['-nopw'];
    if (opts.password !== undefined) {
      const file = join(dir, 'rfbauth');
      const { stdout } = await runCommand('vncpasswd', ['-f'], { input: `${opts.password}\n` });
      await writeFile(file, stdout, { mode: 0o600 });
      authArgs.splice(0, 1, '-rfbauth', file);
    }
    const desktopName = opts.desktopName ?? `vncgate-x11vnc-${xvnc.display}`;
    const failures: string[] = [];
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const port = await freePort(host);
      const proc = await ManagedProcess.start({
        name: `x11vnc :${xvnc.display}`,
        command: 'x11vnc',
        args: [
          '-norc', '-display', `:${xvnc.display}`,
          '-rfbport', String(port), '-listen', host, '-no6', '-rfbportv6', '-1',
          '-forever', '-shared', '-desktop', desktopName, '-rfbversion', rfbVersion,
          ...authArgs,
          ...(opts.extraArgs ?? []),
        ],
      });
      try {
        await waitForListening(proc, port, opts.startTimeoutMs ?? 15_000);
      } catch (err) {
        await proc.stop();
        if (RETRYABLE.test(proc.output())) {
          failures.push(`attempt ${attempt} (port ${port})`);
          continue;
        }
        throw err;
      }
      const startupMs = performance.now() - proc.startedAt;
      let stopped: Promise<void> | undefined;
      const type = opts.password !== undefined ? RFB_SECURITY_TYPE.VncAuth : RFB_SECURITY_TYPE.None;
      const server: X11vncServer = {
        host,
        port,
        desktopName,
        pid: proc.pid,
        password: opts.password,
        rfbVersion,
        banner: `RFB 003.00${rfbVersion.slice(2)}\n`,
        expected: { types: [type], subtypes: null },
        xvnc,
        process: proc,
        tempDir: dir,
        startupMs,
        attempts: attempt,
        stop: () => {
          stopped ??= (async () => {
            registry.delete(server);
            try {
              await proc.stop();
            } finally {
              try {
                await xvnc.stop();
              } finally {
                removeTempDir(dir);
              }
            }
          })();
          return stopped;
        },
      };
      return registry.add(server);
    }
    throw new Error(`startX11vnc: no free port after ${MAX_ATTEMPTS} attempts: ${failures.join(', ')}`);
  } catch (err) {
    await xvnc.stop();
    removeTempDir(dir);
    throw err;
  }
}
