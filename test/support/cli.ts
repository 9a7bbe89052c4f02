import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const VNCGATE_BIN = join(import.meta.dirname, '..', '..', 'bin', 'vncgate.js');

export type CliResult = { code: number | null; stdout: string; stderr: string; json: unknown[] };

/** Runs the real `vncgate` binary with a deadline; parses stdout as JSON lines. */
export function runVncgate(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VNCGATE_BIN, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`vncgate ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 30_000} ms\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const json = stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          try {
            return JSON.parse(l) as unknown;
          } catch {
            return { unparsable: l };
          }
        });
      resolve({ code, stdout, stderr, json });
    });
  });
}
