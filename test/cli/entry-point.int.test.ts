import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_NOT_IN_THIS_BUILD } from '../../src/cli/command.js';
import { TOOL_COMMANDS } from '../../tools/cli/commands.js';
import { VNCGATE_BIN } from '../support/cli.js';

/**
 * bin/vncgate.js composes the command table (issue 16): src/ never imports tools/, so the tools'
 * commands come in from the entry point. A build without dist/tools/ (the container image ships
 * the proxy only) still lists them, and running one says it is not in this build (exit 69).
 */
const root = join(import.meta.dirname, '..', '..');
const CORE = ['serve', 'token create', 'token revoke', 'probe', 'screenshot', 'config import', 'config check'];

function run(bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The `  name  summary` lines of `--help` under a heading, as [name, summary]. */
function section(help: string, heading: string): string[][] {
  const block = help.split(`\n${heading}:\n`)[1]?.split('\n\n')[0] ?? '';
  return block.split('\n').map((l) => l.trim().split(/\s{2,}/));
}

describe('the full build', () => {
  it('--help lists the proxy commands, then every tool command', () => {
    const r = run(VNCGATE_BIN, ['--help']);
    expect(r.code).toBe(0);
    expect(section(r.stdout, 'Commands').map(([n]) => n!.replace(' HOST:PORT', ''))).toEqual(CORE);
    const tools = section(r.stdout, 'Tools');
    expect(tools.map(([n]) => n)).toEqual(Object.keys(TOOL_COMMANDS));
    for (const [, summary] of tools) expect(summary).not.toContain('not in this build');
  });

  it('runs a tool command: loadtest --help prints its own usage', () => {
    const r = run(VNCGATE_BIN, ['loadtest', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(TOOL_COMMANDS.loadtest!.usage);
  });

  it('a name only Object.prototype has is an unknown command', () => {
    expect(run(VNCGATE_BIN, ['toString']).code).toBe(2);
  });
});

describe('a build without dist/tools/ (the container image)', () => {
  let dir = '';
  let bin = '';
  beforeAll(() => {
    // The image's layout: package.json, bin/, dist/src/, dist/public/, node_modules; no dist/tools/.
    dir = mkdtempSync(join(tmpdir(), 'vncgate-lean-'));
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'dist'));
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    bin = join(dir, 'bin', 'vncgate.js');
    copyFileSync(VNCGATE_BIN, bin); // a copy: Node would follow a symlinked entry back to the checkout
    for (const d of ['dist/src', 'dist/public', 'node_modules']) symlinkSync(join(root, d), join(dir, d));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--help still lists every tool command, each marked as not in this build', () => {
    const r = run(bin, ['--help']);
    expect(r.code).toBe(0);
    expect(section(r.stdout, 'Commands').map(([n]) => n!.replace(' HOST:PORT', ''))).toEqual(CORE);
    expect(section(r.stdout, 'Tools')).toEqual(Object.keys(TOOL_COMMANDS).map((n) => [n, '(not in this build)']));
  });

  it('running a tool command exits 69 with one line on stderr, nothing on stdout', () => {
    for (const name of Object.keys(TOOL_COMMANDS)) {
      const r = run(bin, [name, '--listen', '127.0.0.1:0']);
      expect(r.code, name).toBe(EXIT_NOT_IN_THIS_BUILD);
      expect(r.stdout, name).toBe('');
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).toMatch(new RegExp(`^vncgate ${name}: not in this build`));
    }
  });

  it('the proxy commands work as before', () => {
    const r = run(bin, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
    expect(run(bin, ['config', 'check', '--help']).code).toBe(0);
  });
});
