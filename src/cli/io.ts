import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

/** What a command may touch: results on stdout, everything else on stderr. */
export type CliIo = {
  /** One JSON value per line on stdout. */
  out: (value: unknown) => void;
  /** A human line on stderr. */
  err: (line: string) => void;
  /** Logger writing to stderr. */
  log: Logger;
};

/** Bad command-line usage: exit code 2 with the message and usage on stderr. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses HOST:PORT, [IPv6]:PORT. */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m || m[1] === undefined || m[2] === undefined) throw new UsageError(`expected HOST:PORT or [IPV6]:PORT, got ${JSON.stringify(s)}`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`port out of range in ${JSON.stringify(s)}`);
  return { host: m[1], port };
}

/** Reads a secret from a file: the first line, without its line ending. */
export function readSecretFile(path: string): Buffer {
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const nl = text.indexOf(0x0a);
  const line = nl === -1 ? text : text.subarray(0, nl);
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
}
