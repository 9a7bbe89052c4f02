import { describe, expect, it } from 'vitest';
import { ProcSampler, parseStatCpuTicks, parseStatusRss, readOpenFileLimit, readProc, type ProcSample } from '../../../tools/loadtest/proc-sampler.js';

describe('/proc parsing', () => {
  it('takes utime + stime from /proc/PID/stat, even when the command name holds spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime …
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 11 0 100 1000 2000';
    expect(parseStatCpuTicks(stat)).toBe(1234 + 567);
  });

  it('takes VmRSS from /proc/PID/status in bytes', () => {
    expect(parseStatusRss('Name:\tnode\nVmRSS:\t  87856 kB\nThreads:\t11\n')).toBe(87856 * 1024);
    expect(() => parseStatusRss('Name:\tnode\n')).toThrow();
  });

  it('reads a live process (this one)', () => {
    const s = readProc(process.pid);
    expect(s.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(s.cpuSeconds).toBeGreaterThan(0);
    expect(readOpenFileLimit()).toBeGreaterThan(0);
  });
});

describe('ProcSampler', () => {
  it('keeps the peak and a bounded timeline, halving it when full', () => {
    let t = 0;
    const read = (): ProcSample => ({ atMs: t++, rssBytes: t * 10, cpuSeconds: t });
    const sampler = new ProcSampler(1, { read, maxSamples: 8 });
    for (let i = 0; i < 20; i++) sampler.sample();
    expect(sampler.samples.length).toBeLessThanOrEqual(8);
    expect(sampler.peakRssBytes).toBe(200);
    sampler.stop();
  });

  it('stops, with the reason, once the process is gone', () => {
    const sampler = new ProcSampler(1, {
      read: () => {
        throw new Error('ENOENT');
      },
    });
    expect(sampler.sample()).toBeNull();
    expect(sampler.error).toMatch(/ENOENT/);
  });
});
