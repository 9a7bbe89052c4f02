import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError, type CliIo } from '../../src/cli/io.js';
import { tokenCommand } from '../../src/cli/token.js';

/**
 * Issue 18: `token create`'s policy options are checked with the command line, before Redis is
 * touched (the address below has nothing listening). Their effect on a minted token is shown end
 * to end in test/proxy/policy-xvnc.int.test.ts.
 */
const io: CliIo = { out: () => undefined, err: () => undefined, log: pino({ level: 'silent' }) };
const saved = process.env['VNCGATE_REDIS_URL'];

beforeEach(() => {
  process.env['VNCGATE_REDIS_URL'] = 'redis://127.0.0.1:1';
});
afterEach(() => {
  if (saved === undefined) delete process.env['VNCGATE_REDIS_URL'];
  else process.env['VNCGATE_REDIS_URL'] = saved;
});

async function usage(args: string[]): Promise<string> {
  try {
    await tokenCommand(['create', '--target', '10.0.0.7:5900', ...args], io);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('accepted');
}

describe('vncgate token create: --view-only, --clipboard, --max-clipboard-bytes', () => {
  it('refuses values that are not a policy, naming the option', async () => {
    expect(await usage(['--clipboard', 'sideways'])).toContain('--clipboard must be one of none, to-browser, to-remote, both');
    expect(await usage(['--max-clipboard-bytes=-3'])).toContain('--max-clipboard-bytes must be a whole number');
    expect(await usage(['--max-clipboard-bytes', '1e3'])).toContain('--max-clipboard-bytes');
    expect(await usage(['--max-clipboard-bytes', String(2 ** 31 + 1)])).toContain('--max-clipboard-bytes');
  });

  it('--view-only takes no value', async () => {
    await expect(tokenCommand(['create', '--target', '10.0.0.7:5900', '--view-only=yes'], io)).rejects.toThrow();
  });
});
