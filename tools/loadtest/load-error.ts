/**
 * A load-test failure: `reason` is a short stable key that the report groups by ("http-403
 * HTTP_ERR_ORIGIN", "payload-mismatch", "timeout-update", "rfb-refused: <server reason>"…),
 * `detail` says what exactly happened to this one session (offsets, bytes, messages).
 */
export class LoadError extends Error {
  override readonly name = 'LoadError';
  readonly reason: string;

  constructor(reason: string, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

export function toLoadError(err: unknown, fallbackReason = 'internal'): LoadError {
  if (err instanceof LoadError) return err;
  if (err instanceof Error) return new LoadError(`${fallbackReason}: ${err.name}`, err.stack ?? err.message);
  return new LoadError(fallbackReason, String(err));
}
