import type { Server } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../src/observe/index.js';
import { listenMetrics } from '../../src/observe/metrics-server.js';

// The metrics listener's server, so the test can play an accept error on it.
const created = vi.hoisted(() => [] as Server[]);
vi.mock('node:http', async (importOriginal) => {
  const http = await importOriginal<typeof import('node:http')>();
  return {
    ...http,
    createServer: (...args: Parameters<typeof http.createServer>) => {
      const s = http.createServer(...args);
      created.push(s);
      return s;
    },
  };
});

describe('metrics listener', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    created.length = 0;
  });

  it('an accept error after listening is reported, never an uncaught exception that ends the process', async () => {
    const seen: string[] = [];
    const l = await listenMetrics(createMetrics(), '127.0.0.1', 0, (err) => seen.push((err as NodeJS.ErrnoException).code ?? ''));
    closers.push(() => l.close());
    expect(created).toHaveLength(1);
    const acceptError = Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
    expect(() => created[0]!.emit('error', acceptError)).not.toThrow();
    expect(seen).toEqual(['ENFILE']);
    const res = await fetch(`http://${l.address}/metrics`);
    expect(res.status).toBe(200);
  });
});
