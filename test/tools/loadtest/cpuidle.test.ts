import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeCpuIdle, readCpuIdle } from '../../../tools/loadtest/cpuidle.js';

const roots: string[] = [];
function sysTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'vncgate-sys-'));
  roots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

describe('cpuidle facts for the bench header', () => {
  it('reads a KVM guest with haltpoll and polling switched off', () => {
    const c = readCpuIdle(
      sysTree({
        'devices/system/cpu/cpuidle/current_driver': 'haltpoll\n',
        'devices/system/cpu/cpuidle/current_governor_ro': 'haltpoll\n',
        'module/haltpoll/parameters/guest_halt_poll_ns': '0\n',
      }),
    );
    expect(c).toEqual({ driver: 'haltpoll', governor: 'haltpoll', haltPollNs: 0 });
    expect(describeCpuIdle(c)).toBe('cpuidle haltpoll, guest halt polling off (every wake-up of an idle vCPU exits to the hypervisor)');
  });

  it('reports the polling window when it is on, and the governor when it differs from the driver', () => {
    const c = readCpuIdle(
      sysTree({
        'devices/system/cpu/cpuidle/current_driver': 'haltpoll\n',
        'devices/system/cpu/cpuidle/current_governor': 'menu\n',
        'module/haltpoll/parameters/guest_halt_poll_ns': '200000\n',
      }),
    );
    expect(c).toEqual({ driver: 'haltpoll', governor: 'menu', haltPollNs: 200000 });
    expect(describeCpuIdle(c)).toBe('cpuidle haltpoll/menu, guest halt polling up to 200 us');
  });

  it('leaves out what the machine does not show, and ignores a value that is not a number', () => {
    expect(readCpuIdle(sysTree({}))).toEqual({ driver: null, governor: null, haltPollNs: null });
    const bare = readCpuIdle(sysTree({ 'devices/system/cpu/cpuidle/current_driver': 'intel_idle\n', 'module/haltpoll/parameters/guest_halt_poll_ns': 'x\n' }));
    expect(bare).toEqual({ driver: 'intel_idle', governor: null, haltPollNs: null });
    expect(describeCpuIdle(bare)).toBe('cpuidle intel_idle');
    expect(describeCpuIdle({ driver: null, governor: null, haltPollNs: null })).toBe('cpuidle unknown');
  });
});
