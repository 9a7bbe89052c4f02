#!/usr/bin/env node
/**
 * `npm run build`, unless dist/ is newer than every input: the sources (src/, tools/, web/), the build
 * configuration and the installed packages. `npm run demo` uses it so that a second start does
 * not rebuild. Output goes to stderr (the demo's stdout is its console URL alone).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = join(root, 'dist', 'public', 'vnc.html'); // the build's last output
// A dist/ from before src/ and tools/ were compiled side by side has no dist/src/: build again.
const entry = join(root, 'dist', 'src', 'cli', 'main.js');

/** Newest modification time under `p` (files only; node_modules inside web/ skipped). */
function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(p)) if (e !== 'node_modules') max = Math.max(max, newest(join(p, e)));
  return max;
}

const inputs = ['src', 'tools', 'web', 'scripts/build-web.mjs', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json', 'node_modules/.package-lock.json'];
const built = newest(entry) > 0 ? newest(stamp) : 0;
const changed = Math.max(...inputs.map((i) => newest(join(root, i))));
if (built > 0 && built >= changed) {
  process.stderr.write('vncgate: build is up to date\n');
} else {
  const r = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: ['ignore', 2, 2] });
  process.exit(r.status ?? 1);
}
