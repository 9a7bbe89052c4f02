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

/** `token=<value>` in a URL or query string, wherever it appears in text. */
const TOKEN_IN_TEXT = /(\btoken=)[^&\s"'<>;#]+/gi;
const HAS_TOKEN = /token=/i;

/**
 * Blanks token values inside free text. Our own messages never carry a token, but a library's
 * can: fastify, for one, puts the request URL (query string included) in some error messages.
 */
export function scrubTokens(text: string): string {
  return HAS_TOKEN.test(text) ? text.replace(TOKEN_IN_TEXT, '$1[redacted]') : text;
}

function scrubbedError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (out && typeof out === 'object') {
    for (const k of ['message', 'stack'] as const) if (typeof out[k] === 'string') out[k] = scrubTokens(out[k] as string);
  }
  return out;
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
        err: scrubbedError,
      },
      hooks: {
        // The message string of every line, e.g. an error's message logged as the line's message.
        logMethod(args, method) {
          for (let i = 0; i < args.length; i++) {
            const a = args[i];
            if (typeof a === 'string') args[i] = scrubTokens(a);
          }
          return method.apply(this, args as Parameters<typeof method>);
        },
      },
    },
    opts.destination ?? pino.destination(2),
  );
}
