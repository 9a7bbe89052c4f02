import type { Server } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listen } from '../../src/proxy/listeners.js';

// Every net.Server the listeners create, so the test can play an accept error on each.
const created = vi.hoisted(() => [] as Server[]);
vi.mock('node:net', async (importOriginal) => {
  const net = await importOriginal<typeof import('node:net')>();
  return {
    ...net,
    createServer: (...args: Parameters<typeof net.createServer>) => {
      const s = net.createServer(...args);
      created.push(s);
      return s;
    },
  };
});

describe('listeners', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    created.length = 0;
  });

  it('an accept error after listening (ENFILE, ENOBUFS) is logged, never an uncaught exception that ends the process', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const app = Fastify({ loggerInstance: log }) as unknown as FastifyInstance;
    const l = await listen(app, [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0 },
    ]);
    closers.push(() => app.close(), () => l.close());
    expect(created).toHaveLength(1);
    const acceptError = (): Error => Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
    // An EventEmitter throws an 'error' nobody listens to: in Node's accept path that is an uncaught exception.
    expect(() => app.server.emit('error', acceptError())).not.toThrow();
    expect(() => created[0]!.emit('error', acceptError())).not.toThrow();
    expect(() => created[0]!.emit('error', acceptError())).not.toThrow();
    expect(lines.filter((x) => x.code === 'ENFILE')).toHaveLength(3);
  });
});
