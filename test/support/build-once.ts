import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * vitest globalSetup for the integration tier: tests that run the real `vncgate` binary need
 * dist/. `npm test` builds first; when a tier is run on its own and dist/ is older than src/,
 * tools/ or web/, build here so a stale binary is never what gets tested.
 */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = join(import.meta.dirname, '..', '..');
  const built = join(root, 'dist', 'src', 'cli', 'main.js');
  const tools = join(root, 'dist', 'tools', 'cli', 'commands.js');
  const page = join(root, 'dist', 'public', 'vnc.html');
  const stale =
    !existsSync(built) ||
    !existsSync(tools) ||
    !existsSync(page) ||
    statSync(built).mtimeMs < newest(join(root, 'src')) ||
    statSync(tools).mtimeMs < newest(join(root, 'tools')) ||
    statSync(page).mtimeMs < newest(join(root, 'web'));
  if (stale) execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
