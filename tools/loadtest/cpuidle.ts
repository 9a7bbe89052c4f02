import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * How this machine's idle CPUs wait, as far as Linux shows it (`/sys/devices/system/cpu/cpuidle`
 * and, in a KVM guest with the haltpoll driver, `/sys/module/haltpoll/parameters`).
 *
 * Round-trip latency through any relay is mostly wake-ups: the relay, then the backend, then the
 * relay again, each woken by a write on loopback. In a virtual machine a wake-up that lands on an
 * idle vCPU costs an exit to the hypervisor, unless the guest polls for a while before halting
 * (guest halt polling, 200 µs by default in Linux). A VM booted with polling switched off pays
 * that exit on every hop, and the added latency of every relay grows with it, so the benchmark
 * reports the setting beside its figures.
 */
export type CpuIdle = {
  /** cpuidle driver (`haltpoll`, `intel_idle`, `acpi_idle`, …); null where Linux shows none. */
  driver: string | null;
  governor: string | null;
  /** haltpoll's `guest_halt_poll_ns`, the longest an idle vCPU polls before halting; null without haltpoll. */
  haltPollNs: number | null;
};

function readTrimmed(path: string): string | null {
  try {
    const s = readFileSync(path, 'latin1').trim();
    return s === '' ? null : s;
  } catch {
    return null;
  }
}

/** Reads the idle settings under `sysRoot` (default `/sys`); fields it cannot read are null. */
export function readCpuIdle(sysRoot = '/sys'): CpuIdle {
  const poll = readTrimmed(join(sysRoot, 'module/haltpoll/parameters/guest_halt_poll_ns'));
  const ns = poll !== null && /^\d+$/.test(poll) ? Number(poll) : null;
  return {
    driver: readTrimmed(join(sysRoot, 'devices/system/cpu/cpuidle/current_driver')),
    governor: readTrimmed(join(sysRoot, 'devices/system/cpu/cpuidle/current_governor_ro')) ?? readTrimmed(join(sysRoot, 'devices/system/cpu/cpuidle/current_governor')),
    haltPollNs: ns,
  };
}

/** One phrase for a report header, e.g. "cpuidle haltpoll/haltpoll, guest halt polling off". */
export function describeCpuIdle(c: CpuIdle): string {
  const base = c.driver === null ? 'cpuidle unknown' : `cpuidle ${c.driver}${c.governor !== null && c.governor !== c.driver ? `/${c.governor}` : ''}`;
  if (c.haltPollNs === null) return base;
  return c.haltPollNs === 0 ? `${base}, guest halt polling off (every wake-up of an idle vCPU exits to the hypervisor)` : `${base}, guest halt polling up to ${Math.round(c.haltPollNs / 1000)} us`;
}
