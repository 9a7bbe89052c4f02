import { loadConfig, type Config } from '../config/index.js';
import { VncgateError } from '../errors.js';
import { createIronic, type ResolvedNode } from '../ironic/index.js';
import { TargetResolvers } from '../proxy/authorization/index.js';
import { withDeadline } from '../proxy/screenshot.js';
import type { ConsoleTarget } from '../tokens/index.js';
import type { ResolvedTarget } from '../target.js';

/**
 * The configuration a console command (`probe --node`, `screenshot`) needs: backend profiles and
 * their credentials, the target policy, Ironic. Loaded as `serve` loads it, except that the
 * listener's TLS files are not needed to look at a console.
 */
export function loadConsoleConfig(file: string | undefined): Config {
  return loadConfig({ ...(file !== undefined ? { file } : {}), overrides: { tls: { plainHttp: true } } });
}

/** The node's console endpoint and backend profile, from Ironic, within `timeoutMs`. */
export async function resolveNode(config: Config, node: string, timeoutMs: number): Promise<ResolvedNode> {
  const ironic = createIronic(config);
  if (!ironic) throw new VncgateError('IRONIC_ERR_NOT_CONFIGURED', 'node targets need Ironic to be configured (ironic.url, VNCGATE_IRONIC_URL)');
  return withDeadline(timeoutMs, undefined, (signal) => ironic.resolver.resolve(node, signal));
}

/** A static target (its profile from the configuration, the target policy checked at connect time) or a node. */
export async function resolveConsoleTarget(config: Config, target: ConsoleTarget, timeoutMs: number): Promise<ResolvedTarget> {
  if (target.kind === 'node') return resolveNode(config, target.node, timeoutMs);
  return new TargetResolvers(config, null).resolve(target, new AbortController().signal);
}
