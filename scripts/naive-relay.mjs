#!/usr/bin/env node
/**
 * Benchmark baselines only: the smallest possible relays (no tokens, no RFB handshake, no
 * backpressure, no deadlines), to separate vncgate's own cost from what any Node relay costs.
 *
 * - A WebSocket→TCP relay on 127.0.0.1:<ephemeral>: each WebSocket goes to the TCP port in ?port=.
 *   With --cert and --key it is served over TLS (wss), with Node's default TLS settings, as
 *   vncgate's own listener uses them when given only a certificate and key.
 * - For each TARGET_PORT argument, a TCP→TCP relay on 127.0.0.1:<ephemeral> to that port: what
 *   one more Node process on the path costs without any WebSocket framing.
 *
 * Prints one line: {"port": WS_PORT, "tls": BOOLEAN, "tcp": {"TARGET_PORT": LISTEN_PORT, …}}.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const usage = 'usage: naive-relay.mjs [--cert FILE --key FILE] [TARGET_PORT...]';
const { values, positionals } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' } }, allowPositionals: true });
const targets = positionals.map(Number);
if (targets.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) throw new Error(usage);
if ((values.cert === undefined) !== (values.key === undefined)) throw new Error(usage);
const tls = values.cert !== undefined;

const listening = (server) => new Promise((resolve) => server.once('listening', () => resolve(server.address().port)));

// Over TLS the WebSocket server rides on an HTTPS server, as in vncgate; over plain ws it owns
// its own HTTP server.
const https = tls ? createHttpsServer({ cert: readFileSync(values.cert), key: readFileSync(values.key) }) : null;
const wss = https ? new WebSocketServer({ server: https, perMessageDeflate: false }) : new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
const wsPort = https ? listening(https) : listening(wss);
https?.listen(0, '127.0.0.1');
wss.on('connection', (ws, req) => {
  const port = Number(new URL(req.url ?? '/', 'http://relay').searchParams.get('port'));
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  s.on('data', (d) => ws.send(d));
  ws.on('message', (d) => s.write(d));
  s.on('close', () => ws.close());
  s.on('error', () => ws.terminate());
  ws.on('close', () => s.destroy());
});

const tcp = {};
for (const target of targets) {
  const server = net.createServer({ noDelay: true }, (c) => {
    const s = net.connect({ host: '127.0.0.1', port: target, noDelay: true });
    c.on('data', (d) => s.write(d));
    s.on('data', (d) => c.write(d));
    c.on('close', () => s.destroy());
    s.on('close', () => c.destroy());
    c.on('error', () => s.destroy());
    s.on('error', () => c.destroy());
  });
  server.listen(0, '127.0.0.1');
  tcp[target] = await listening(server);
}

process.stdout.write(`${JSON.stringify({ port: await wsPort, tls, tcp })}\n`);
process.on('SIGTERM', () => process.exit(0));
