import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear. Session loggers never receive tokens in the first
 * place; this is the second line of defence.
 */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'cookie',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers.cookie',
];

/** A URL's path without its query string or fragment: query strings carry tokens (?token=…). */
export function pathOnly(url: string | undefined): string {
  if (!url) return '';
  const cut = url.search(/[?#]/);
  return cut === -1 ? url : url.slice(0, cut);
}

export type LogOptions = { level: string; destination?: DestinationStream };

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'vncgate' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        // Requests are logged by path only, never with their query string or credentials.
        req: (req: { method?: string; url?: string; ip?: string; socket?: { remoteAddress?: string } }) => ({
          method: req.method,
          path: pathOnly(req.url),
          remote: req.ip ?? req.socket?.remoteAddress,
        }),
        err: pino.stdSerializers.err,
      },
    },
    opts.destination ?? pino.destination(2),
  );
}
