import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubTokens } from '../src/log.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

const TOKEN = 'Ee0kUbAjhOEk5IVgeC9VeNQePhChEyEFXqvTZ7XQ5pw';

describe('log scrubbing', () => {
  it('blanks token values in text, whatever surrounds them', () => {
    expect(scrubTokens(`in "/websockify?token=${TOKEN}" (GET)`)).toBe('in "/websockify?token=[redacted]" (GET)');
    expect(scrubTokens(`/vnc.html?path=websockify&TOKEN=${TOKEN}&x=1`)).toBe('/vnc.html?path=websockify&TOKEN=[redacted]&x=1');
    expect(scrubTokens('nothing to see')).toBe('nothing to see');
  });

  it('keeps tokens out of messages and serialized errors that a library built from the request URL', () => {
    const { lines, stream } = capture();
    const log = createLogger({ level: 'info', destination: stream }).child({ reqId: 'r1' });
    const err = new Error(`Reply was already sent, did you forget to "return reply" in "/websockify?token=${TOKEN}" (GET)?`);
    log.warn({ err }, err.message);
    log.info(`upgrade for /?token=${TOKEN}`);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toContain(TOKEN);
    const first = JSON.parse(lines[0]!) as { msg: string; err: { message: string; stack: string; type: string } };
    expect(first.msg).toContain('token=[redacted]');
    expect(first.err.message).toContain('token=[redacted]');
    expect(first.err.stack).toContain('token=[redacted]');
    expect(first.err.type).toBe('Error');
  });
});
