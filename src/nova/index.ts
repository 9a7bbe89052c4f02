import type { Config } from '../config/index.js';
import type { UpstreamObserver } from '../observe/upstream.js';
import { KeystoneSession } from '../openstack/index.js';
import { NovaApiLookup, NovaDbLookup, type NovaTokenLookup } from './resolvers.js';
export { parseCellDbUrl, type CellDb } from '../config/index.js';

export {
  NOVA_MICROVERSION,
  NovaApiLookup,
  NovaDbLookup,
  isNovaToken,
  novaTokenHash,
  describeCellDb,
  plainDbUrl,
  type NovaConsole,
  type NovaTokenLookup,
} from './resolvers.js';

/** Builds the configured Nova token lookup (REST API or cell databases), or null. */
export function createNova(config: Config, observe?: UpstreamObserver): NovaTokenLookup | null {
  const s = config.nova;
  if (!s) return null;
  const r = config.raw.nova;
  if (s.resolver === 'db') return new NovaDbLookup(s.dbUrls, r.timeoutMs, undefined, observe);
  const auth =
    s.auth.type === 'keystone'
      ? { type: 'keystone' as const, session: new KeystoneSession({ ...s.auth, timeoutMs: r.timeoutMs, observe, ...(s.ca ? { caBundle: s.ca } : {}) }) }
      : { type: 'noauth' as const };
  return new NovaApiLookup({ url: s.url, auth, ...(s.ca ? { ca: s.ca } : {}), timeoutMs: r.timeoutMs, retries: r.retries, observe });
}
