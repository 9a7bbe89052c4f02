import { describe, expect, it } from 'vitest';
import { MemoryFloor, parseMemAvailable, readMemAvailable } from '../../../tools/loadtest/meminfo.js';

const MEMINFO = `MemTotal:       24684092 kB
MemFree:        22940728 kB
MemAvailable:   24106024 kB
Buffers:           12345 kB
`;

describe('MemAvailable', () => {
  it('is read from /proc/meminfo in bytes', () => {
    expect(parseMemAvailable(MEMINFO)).toBe(24106024 * 1024);
    expect(parseMemAvailable('MemTotal: 1 kB\n')).toBeNull();
  });

  it('is there on this (Linux) machine', () => {
    expect(readMemAvailable()).toBeGreaterThan(0);
  });
});

describe('MemoryFloor', () => {
  it('refuses while available memory is below the floor, and remembers it did', () => {
    let avail = 10_000;
    const floor = new MemoryFloor(5_000, { read: () => avail, intervalMs: 0 });
    expect(floor.ok(1)).toBe(true);
    avail = 4_000;
    expect(floor.ok(2)).toBe(false);
    avail = 6_000;
    expect(floor.ok(3)).toBe(true);
    expect(floor.state()).toEqual({ floorBytes: 5_000, minAvailableBytes: 4_000, hit: true });
  });

  it('reads /proc/meminfo at most once per interval', () => {
    let reads = 0;
    const floor = new MemoryFloor(0, { read: () => ++reads, intervalMs: 250 });
    floor.ok(0);
    floor.ok(100);
    floor.ok(249);
    expect(reads).toBe(1);
    floor.ok(250);
    expect(reads).toBe(2);
  });

  it('lets everything through where MemAvailable cannot be read, and says it could not', () => {
    const floor = new MemoryFloor(1, { read: () => null, intervalMs: 0 });
    expect(floor.ok()).toBe(true);
    expect(floor.state()).toEqual({ floorBytes: 1, minAvailableBytes: null, hit: false });
  });
});
