import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { consoleUrl } from '../../src/proxy/console-url.js';
import { startSyntheticServer } from '../synthetic/index.js';
import type { StaticTarget } from '../../src/tokens/index.js';
import { ensureDevCertificate, ensureSecretFile } from './dev-cert.js';
import type { CliIo } from '../../src/cli/io.js';
import { startVncgate, waitForSignal } from '../../src/cli/serve.js';

export const DEMO_USAGE = `Usage: vncgate demo [--listen HOST:PORT] [--state-dir DIR]

Starts vncgate with a generated development certificate and in-memory tokens, plus the synthetic
demo VNC server (VNC password authentication, which vncgate performs; the browser never sees the
password). Prints a ready console URL on stdout; open it in a browser. Every console link works
once; GET /demo on the same address hands out a fresh one.
`;

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { listen: { type: 'string' }, 'state-dir': { type: 'string' } },
  });
  const stateDir = resolve(values['state-dir'] ?? '.cache/demo');
  const { certFile, keyFile, fingerprint256 } = ensureDevCertificate(stateDir);
  const passwordFile = resolve(stateDir, 'vnc-password');
  const password = ensureSecretFile(passwordFile);

  const vnc = await startSyntheticServer({ mode: 'demo', security: ['vncauth'], password });
  const target: StaticTarget = { kind: 'static', host: vnc.host, port: vnc.port };
  const config = loadConfig({
    overrides: {
      // Without --listen: VNCGATE_LISTEN, else the default 127.0.0.1:6080.
      ...(values.listen !== undefined ? { listen: [values.listen] } : {}),
      tls: { certFile, keyFile, plainHttp: false },
      // The demo explains itself on stderr; its log shows only what went wrong (VNCGATE_LOG_LEVEL wins).
      ...(process.env.VNCGATE_LOG_LEVEL === undefined ? { log: { level: 'warn' } } : {}),
      backends: {
        // Loopback is refused unless named: the demo allows its own backend, and nothing else.
        allowedTargets: [vnc.host.includes(':') ? `[${vnc.host}]:${vnc.port}` : `${vnc.host}:${vnc.port}`],
        defaultProfile: 'demo',
        profiles: { demo: { security: ['vncauth'], passwordFile } },
      },
    },
  });
  const started = await startVncgate(config, io, {
    memoryTokensIntended: true,
    extraPlugins: [
      (app) => {
        // Demo convenience: a fresh single-use link on every visit.
        app.get('/demo', async (_req, reply) => {
          const t = await tokens.issue(target, 3600);
          reply.header('Cache-Control', 'no-store');
          return reply.redirect(consoleUrl(server.baseUrl, t.token), 303);
        });
      },
    ],
  }).catch(async (err: unknown) => {
    await vnc.close(); // or the demo's VNC server keeps the process alive after the error
    throw err;
  });
  const { server, tokens } = started;
  const first = await tokens.issue(target, 3600);
  const url = consoleUrl(server.baseUrl, first.token);
  const backend = `${vnc.host.includes(':') ? `[${vnc.host}]` : vnc.host}:${vnc.port}`;
  io.err(
    [
      '',
      `vncgate demo: synthetic VNC console (VNC password auth) on ${backend}; its password is in ${passwordFile}`,
      '             probe it as vncgate does (from a checkout, vncgate is bin/vncgate.js):',
      `             vncgate probe ${backend} --security vncauth --password-file ${shellWord(passwordFile)}`,
      `vncgate demo: vncgate listening on ${server.addresses.join(', ')} with a self-signed development certificate`,
      `             (SHA-256 ${fingerprint256}); your browser will ask you to accept it.`,
      'vncgate demo: open the console URL below. It works once; for a fresh one open',
      `             ${new URL('demo', server.baseUrl).toString()}`,
      'vncgate demo: press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  process.stdout.write(`${url}\n`);
  // A person at a terminal pressing Ctrl-C wants it stopped: no drain, sessions close at once.
  await waitForSignal();
  await server.close();
  await tokens.close();
  await vnc.close();
  return 0;
}

/** `text` as one POSIX shell word, so the printed probe command can be pasted as it is. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}
