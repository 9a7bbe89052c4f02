import type { HttpResponse } from '../openstack/index.js';

/**
 * Ironic error bodies: {"error_message": "<JSON string of {faultstring, …}>"} (ironic/api/method.py);
 * returns the faultstring when there is one, bounded, for logs.
 */
export function ironicFault(res: HttpResponse): string {
  try {
    const outer = JSON.parse(res.body) as { error_message?: unknown };
    if (typeof outer.error_message === 'string') {
      try {
        const inner = JSON.parse(outer.error_message) as { faultstring?: unknown };
        if (typeof inner.faultstring === 'string') return inner.faultstring.slice(0, 500);
      } catch {
        return outer.error_message.slice(0, 500);
      }
    }
  } catch {
    // not JSON: fall through
  }
  return res.body.slice(0, 200);
}
