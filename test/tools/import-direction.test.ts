import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Issue 16: tools/ (the demo, the load tester, the synthetic VNC server) may import src/; src/ never
 * imports tools/ (or anything else outside src/), so the proxy builds and ships without them.
 */
const root = resolve(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative specifiers of static imports, re-exports and dynamic imports. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!);
}

describe('import direction', () => {
  it('finds the imports it checks (the scan is not vacuous)', () => {
    const demo = relativeImports(join(root, 'tools', 'cli', 'demo.ts'));
    expect(demo).toContain('../../src/cli/serve.js');
    expect(sources(join(root, 'src')).length).toBeGreaterThan(50);
  });

  it('src/ imports nothing outside src/', () => {
    const outside: string[] = [];
    for (const file of sources(join(root, 'src'))) {
      for (const spec of relativeImports(file)) {
        const target = resolve(dirname(file), spec);
        if (!target.startsWith(join(root, 'src') + sep)) outside.push(`${relative(root, file)} → ${spec}`);
      }
    }
    expect(outside).toEqual([]);
  });
});
