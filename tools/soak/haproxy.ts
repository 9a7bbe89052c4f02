import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Child, freePort, waitUntil } from './procs.js';

/**
 * A real HAProxy in TCP mode in front of the replicas, as a fleet runs: round robin, PROXY v2
 * headers (`send-proxy-v2`), health checks over TLS against `/readyz` (a draining replica answers
 * 503 and leaves the rotation; so does one whose token store is away), and a connection refused
 * by a replica that is down is dispatched to the other (`option redispatch`, `retries`).
 */
export type HaproxyStats = {
  /** Connections HAProxy could give to no server (all out of rotation): the client sees a reset. */
  noServer: number;
  /** Times each server was taken out of rotation (its check failed `fall` times). */
  markedDown: Record<string, number>;
};

export type HaproxyHandle = { readonly port: number; readonly child: Child; stats(): HaproxyStats; stop(): Promise<void> };

export async function startHaproxy(dir: string, servers: readonly { name: string; port: number }[]): Promise<HaproxyHandle> {
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    [
      'global',
      '  maxconn 4096',
      '  log stderr format raw local0 info',
      'defaults',
      '  log global',
      '  option tcplog',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 120s',
      '  timeout server 120s',
      '  timeout check 2s',
      '  retries 3',
      '  option redispatch',
      'frontend fleet',
      `  bind 127.0.0.1:${port}`,
      '  default_backend replicas',
      'backend replicas',
      '  balance roundrobin',
      '  option httpchk',
      '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1',
      '  http-check expect status 200',
      '  default-server send-proxy-v2 check check-send-proxy check-ssl verify none inter 500 fall 2 rise 1',
      ...servers.map((s) => `  server ${s.name} 127.0.0.1:${s.port}`),
      '',
    ].join('\n'),
  );
  const stats: HaproxyStats = { noServer: 0, markedDown: {} };
  const onLine = (line: string): void => {
    if (line.includes('/<NOSRV> ')) stats.noServer++;
    const down = /Server replicas\/(\S+) is DOWN/.exec(line);
    if (down) stats.markedDown[down[1]!] = (stats.markedDown[down[1]!] ?? 0) + 1;
  };
  const child = Child.start({ name: 'haproxy', command: 'haproxy', args: ['-db', '-f', cfg], onLine });
  await waitUntil('haproxy listening', 10_000, () => {
    if (!child.running) throw new Error(child.describe());
    return new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${child.describe()}`);
  });
  return { port, child, stats: () => ({ noServer: stats.noServer, markedDown: { ...stats.markedDown } }), stop: () => child.stop() };
}
