/**
 * Timing of calls to the services vncgate depends on. The adapters (token store, OpenStack
 * clients) take an optional observer and call it once per request; they know nothing of metrics.
 */

/** The services timed, a fixed set (a metric label). */
export const UPSTREAM_SERVICES = ['redis', 'ironic', 'nova', 'nova_db', 'keystone'] as const;
export type UpstreamService = (typeof UPSTREAM_SERVICES)[number];

/** One finished request: which service, how long (seconds), whether it succeeded. */
export type UpstreamObserver = (service: UpstreamService, seconds: number, ok: boolean) => void;

/** Runs `call`, reporting its duration and outcome to `observe` (when there is one). */
export async function timed<T>(observe: UpstreamObserver | undefined, service: UpstreamService, call: () => Promise<T>): Promise<T> {
  if (!observe) return call();
  const t0 = performance.now();
  try {
    const result = await call();
    observe(service, (performance.now() - t0) / 1000, true);
    return result;
  } catch (err) {
    observe(service, (performance.now() - t0) / 1000, false);
    throw err;
  }
}
