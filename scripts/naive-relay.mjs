#!/usr/bin/env node
/**
 * Benchmark baseline only: the smallest possible WebSocket→TCP relay (no tokens, no RFB handshake,
 * no backpressure, no deadlines), to separate vncgate's own cost from the cost of any Node ws relay.
 * Listens on 127.0.0.1:<ephemeral>, prints {"port": N}; connects each WebSocket to ?port=.
 */
import net from 'node:net';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ port: wss.address().port })}\n`));
wss.on('connection', (ws, req) => {
  const port = Number(new URL(req.url ?? '/', 'http://relay').searchParams.get('port'));
  const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
  s.on('data', (d) => ws.send(d));
  ws.on('message', (d) => s.write(d));
  s.on('close', () => ws.close());
  s.on('error', () => ws.terminate());
  ws.on('close', () => s.destroy());
});
process.on('SIGTERM', () => process.exit(0));
