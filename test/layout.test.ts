import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The layout of STYLE.md ("The layout, as the project grows"), issue 16: folders on floors, each
 * importing only from floors below it; tools apart; no file of the proxy's own tree past ~350
 * lines unless listed below with its reason.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Top to bottom. A folder (or bottom file) imports only from a lower floor, or from its own unit. */
const FLOORS: Record<string, number> = {
  cli: 5,
  proxy: 4,
  ironic: 3,
  nova: 3,
  // Session recordings: files, retention, the format (issue 18); beneath the proxy that taps them.
  record: 3,
  // The OpenStack HTTP client and Keystone, beneath the resolvers (when it exists).
  openstack: 2.5,
  tokens: 2,
  config: 2,
  web: 2,
  observe: 2,
  rfb: 1,
  'errors.ts': 1,
  'log.ts': 1,
  'target.ts': 1,
  'target-policy.ts': 1,
  'ws-frame.ts': 1,
  'proxy-protocol.ts': 1,
  'client-key.ts': 1,
  'package-root.ts': 1,
};

/** The load tester, the synthetic VNC server: tools, in src/ or moved to tools/ (either is accepted). */
const TOOLS = new Set(['loadtest', 'synthetic', 'tools']);

/** Files of the proxy's own tree allowed past the limit, each with why it is one thing. */
const LONG_FILES: Record<string, string> = {
  'config/schema.ts': 'one declarative table: every option with its default and doc comment',
  'rfb/client-handshake.ts': 'the RFB client state machine: every transition in one file (STYLE.md, h11 _state.py)',
};
const MAX_LINES = 350;

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** The unit a file belongs to: its top folder in src/, or the file itself at the top; `tools` for the tools/ folder. */
function unitOf(file: string): string | null {
  if (relative(ROOT, file).split(sep)[0] === 'tools') return 'tools';
  const rel = relative(SRC, file);
  if (rel.startsWith('..')) return null;
  return rel.split(sep)[0]!;
}

const IMPORT = /\b(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

type Edge = { from: string; to: string; fromUnit: string; toUnit: string | null; spec: string };

function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
    edges.push({ from: relative(ROOT, file), to: relative(ROOT, target), fromUnit: unitOf(file)!, toUnit: unitOf(target), spec });
  }
  return edges;
}

const srcFiles = tsFiles(SRC);
const edges = srcFiles.flatMap(importsOf);
const isTool = (unit: string | null): boolean => unit !== null && TOOLS.has(unit);

describe('layout (issue 16)', () => {
  it('prints the import graph between folders', () => {
    const counts = new Map<string, number>();
    for (const e of edges) {
      if (e.toUnit === e.fromUnit) continue;
      const key = `${e.fromUnit} -> ${e.toUnit ?? e.to}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const lines = [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${k} (${n})`);
    console.log(`import graph of src/ (folder -> folder, imports):\n${lines.join('\n')}`);
    expect(edges.length).toBeGreaterThan(0);
  });

  it('every unit of src/ has a floor or is a tool', () => {
    const units = new Set(srcFiles.map((f) => unitOf(f)!));
    const unplaced = [...units].filter((u) => FLOORS[u] === undefined && !TOOLS.has(u));
    expect(unplaced).toEqual([]);
  });

  it('no import goes up a floor (or sideways between ironic and nova)', () => {
    const bad = edges
      .filter((e) => !isTool(e.fromUnit) && e.toUnit !== null && !isTool(e.toUnit) && e.toUnit !== e.fromUnit)
      .filter((e) => {
        const from = FLOORS[e.fromUnit];
        const to = FLOORS[e.toUnit!];
        if (from === undefined || to === undefined) return true;
        if (to > from) return true;
        // Same floor: the resolvers stay apart (what they share lives in openstack/, beneath them).
        return to === from && (e.fromUnit === 'ironic' || e.fromUnit === 'nova');
      })
      .map((e) => `${e.from} -> ${e.to}`);
    // nova -> ironic (the Keystone session and HTTP client) goes once they move to src/openstack/.
    expect(bad).toEqual([]);
  });

  it('src/ imports nothing outside itself (tools live apart and import the proxy, not the reverse)', () => {
    const outside = edges.filter((e) => e.toUnit === null).map((e) => `${e.from} -> ${e.to}`);
    expect(outside).toEqual([]);
  });

  it('tools are imported only by cli/ (their commands)', () => {
    const bad = edges.filter((e) => isTool(e.toUnit) && !isTool(e.fromUnit) && e.fromUnit !== 'cli').map((e) => `${e.from} -> ${e.to}`);
    expect(bad).toEqual([]);
  });

  it(`no file of the proxy's own tree is over ${MAX_LINES} lines, except those listed with a reason`, () => {
    const long: string[] = [];
    const listedAndShort: string[] = [];
    for (const f of srcFiles) {
      if (isTool(unitOf(f))) continue;
      const rel = relative(SRC, f).split(sep).join('/');
      const lines = readFileSync(f, 'utf8').split('\n').length - 1;
      if (lines > MAX_LINES && LONG_FILES[rel] === undefined) long.push(`${rel} (${lines})`);
      if (lines <= MAX_LINES && LONG_FILES[rel] !== undefined) listedAndShort.push(rel);
    }
    expect(long).toEqual([]);
    // An exception that no longer applies is taken off the list.
    expect(listedAndShort).toEqual([]);
  });
});
