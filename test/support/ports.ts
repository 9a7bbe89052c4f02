/**
 * Ports for test servers: a free-port helper, a TCP-connect readiness poll, and — the one the
 * starters rely on — `waitForListening`, which reads /proc to prove that the port is held by *our*
 * child and that the child listens on loopback only.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { sleep, type ManagedProcess } from './proc.js';


/**
 * A port the kernel just handed out on `host`, then released. Racy by nature (another process may
 * take it before our server binds), so every starter retries on "address in use" and then proves,
 * with `waitForListening`, that the listener really belongs to its own child.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr !== null && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port from listen(0)'));
      });
    });
  });
}

/**
 * Polls a TCP connect to host:port until it succeeds or `timeoutMs` passes. Note the connect itself
 * counts as an (unauthenticated) connection at the server; the starters here use
 * `waitForListening` instead, which does not touch the server.
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, opts: { proc?: ManagedProcess; intervalMs?: number } = {}): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastError = 'no attempt';
  while (performance.now() < deadline) {
    if (opts.proc !== undefined && !opts.proc.running) {
      throw new Error(`waiting for ${host}:${port}: ${opts.proc.describe()}`);
    }
    const remaining = Math.max(1, deadline - performance.now());
    const err = await tryConnect(host, port, Math.min(remaining, 1000));
    if (err === undefined) return;
    lastError = err;
    await sleep(Math.min(opts.intervalMs ?? 25, Math.max(0, deadline - performance.now())));
  }
  throw new Error(`${host}:${port} not accepting connections within ${timeoutMs} ms (last: ${lastError})`);
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (err: string | undefined): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done('connect timeout'), timeoutMs);
    sock.once('connect', () => done(undefined));
    sock.once('error', (e) => done(e.message));
  });
}

// --- who listens where (Linux /proc) ---------------------------------------------------------

export interface ListeningSocket {
  address: string;
  port: number;
  family: 4 | 6;
}

const TCP_LISTEN = '0A'; // include/net/tcp_states.h TCP_LISTEN

/** Parses /proc/net/tcp{,6} address hex: 32-bit words in host (little-endian) byte order. */
function parseProcAddress(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // RFC 5952: compress the longest run of two or more zero groups.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.len < 2) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/**
 * TCP listening sockets owned by `pid` (its open fds matched against /proc/net/tcp{,6} inodes).
 * This is what proves that a port is served by *our* child and not by whoever won a bind race.
 */
export function listeningSocketsOf(pid: number): ListeningSocket[] {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) inodes.add(m[1]);
    } catch {
      // fd closed while we looked
    }
  }
  const found: ListeningSocket[] = [];
  for (const [file, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]] as const) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      const state = cols[3];
      const inode = cols[9];
      if (local === undefined || state !== TCP_LISTEN || inode === undefined || !inodes.has(inode)) continue;
      const [addrHex, portHex] = local.split(':');
      if (addrHex === undefined || portHex === undefined) continue;
      found.push({ address: parseProcAddress(addrHex), port: parseInt(portHex, 16), family });
    }
  }
  return found;
}

export function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

/**
 * Waits until `proc` itself listens on `port`, failing fast (with its output) if it exits, and
 * failing if it listens on anything that is not loopback: test servers must never be reachable
 * from outside this machine.
 */
export async function waitForListening(proc: ManagedProcess, port: number, timeoutMs: number): Promise<ListeningSocket[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw new Error(`${proc.name} exited before listening on port ${port}: ${proc.describe()}`);
    const sockets = listeningSocketsOf(proc.pid);
    if (sockets.some((s) => s.port === port)) {
      const exposed = sockets.filter((s) => !isLoopback(s.address));
      if (exposed.length > 0) {
        throw new Error(`${proc.name} listens beyond loopback: ${exposed.map((s) => `${s.address}:${s.port}`).join(', ')}`);
      }
      return sockets;
    }
    if (performance.now() >= deadline) {
      throw new Error(`${proc.name} not listening on port ${port} within ${timeoutMs} ms: ${proc.describe()}`);
    }
    await sleep(10);
  }
}
