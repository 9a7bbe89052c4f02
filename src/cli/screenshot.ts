import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { toVncgateError } from '../errors.js';
import { takeScreenshot, withDeadline } from '../proxy/screenshot.js';
import { parseStaticTargetText, type ConsoleTarget } from '../tokens/index.js';
import { resolveConsoleTarget, loadConsoleConfig } from './console-target.js';
import { UsageError, type CliIo } from './io.js';

export const SCREENSHOT_USAGE = `Usage: vncgate screenshot (HOST:PORT [--profile NAME] | --node UUID|NAME) -o FILE.png [--config FILE] [--timeout MS]

Takes one full frame of a console as GET /v1/screenshots does: connects shared (a user's session
is not disturbed), authenticates with the backend profile (NAME, the default profile, or the one
Ironic's rules choose for the node), and writes a PNG to FILE ("-" for stdout, then nothing else
is printed there). A HOST:PORT must be allowed by backends.allowedTargets. Prints one JSON object
on stdout; exits 0 on success, 1 on failure. Limits: api.screenshots.maxWidth/maxHeight; the
deadline is api.screenshots.timeoutMs unless --timeout is given.
`;

export async function screenshotCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { node: { type: 'string' }, profile: { type: 'string' }, output: { type: 'string', short: 'o' }, config: { type: 'string' }, timeout: { type: 'string' } },
  });
  if (values.output === undefined) throw new UsageError('-o FILE.png is required');
  let target: ConsoleTarget;
  if (values.node !== undefined) {
    if (positionals.length > 0 || values.profile !== undefined) throw new UsageError('--node takes no HOST:PORT and no --profile (Ironic rules choose the profile)');
    target = { kind: 'node', node: values.node };
  } else {
    if (positionals.length !== 1) throw new UsageError('give one HOST:PORT or --node');
    const parsed = parseStaticTargetText(positionals[0]!, values.profile);
    if (!parsed.ok) throw new UsageError(`invalid target: ${parsed.problems.join('; ')}`);
    target = parsed.target;
  }
  const config = loadConsoleConfig(values.config);
  const s = config.raw.api.screenshots;
  const timeoutMs = values.timeout === undefined ? s.timeoutMs : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > 600_000) throw new UsageError('--timeout must be 1..600000 ms');
  if (target.kind === 'static' && target.profile !== undefined && !config.profiles.has(target.profile)) throw new UsageError(`unknown backend profile ${JSON.stringify(target.profile)}`);
  const what = target.kind === 'node' ? { node: target.node } : { target: positionals[0]! };
  const started = performance.now();
  try {
    const shot = await withDeadline(timeoutMs, undefined, async (signal, remainingMs) => {
      const resolved = await resolveConsoleTarget(config, target, remainingMs());
      return takeScreenshot(resolved, {
        connectTimeoutMs: config.raw.session.connectTimeoutMs,
        signal,
        remainingMs,
        log: io.log,
        limits: { maxWidth: s.maxWidth, maxHeight: s.maxHeight, maxCutTextBytes: 1 << 20, maxRequests: 4 },
      });
    });
    if (values.output === '-') process.stdout.write(shot.png);
    else writeFileSync(values.output, shot.png);
    const summary = { ok: true, ...what, file: values.output, bytes: shot.png.length, width: shot.frame.width, height: shot.frame.height, desktopName: shot.desktopName, security: shot.security, elapsedMs: Math.round(performance.now() - started) };
    if (values.output === '-') io.err(JSON.stringify(summary));
    else io.out(summary);
    return 0;
  } catch (err) {
    const e = toVncgateError(err);
    const failure = { ok: false, ...what, error: { code: e.code, message: e.message } };
    if (values.output === '-') io.err(JSON.stringify(failure));
    else io.out(failure);
    io.err(`vncgate screenshot: ${e.code}: ${e.message}`);
    return 1;
  }
}
