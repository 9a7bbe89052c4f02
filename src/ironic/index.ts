import type { Config } from '../config/index.js';
import type { UpstreamObserver } from '../observe/upstream.js';
import { IronicClient } from './client.js';
import { KeystoneSession } from '../openstack/index.js';
import { IronicNodeResolver } from './node-resolver.js';

export { IronicClient, IRONIC_MICROVERSION, type ConsoleState, type IronicAuth, type IronicClientOptions, type NodeConsoleFields } from './client.js';
export { IronicNodeResolver, parseIronicConsoleUrl, secretEquals, type IronicProfileRules, type ResolvedNode } from './node-resolver.js';

/** Builds the Ironic client and node resolver from the configuration, or null when not configured. */
export function createIronic(config: Config, observe?: UpstreamObserver): { client: IronicClient; resolver: IronicNodeResolver } | null {
  const s = config.ironic;
  if (!s) return null;
  const r = config.raw.ironic;
  const auth =
    s.auth.type === 'keystone'
      ? {
          type: 'keystone' as const,
          session: new KeystoneSession({
            ...s.auth,
            timeoutMs: r.timeoutMs,
            observe,
            ...(s.ca ? { caBundle: s.ca } : {}),
          }),
        }
      : s.auth;
  const client = new IronicClient({ url: s.url, auth, ...(s.ca ? { ca: s.ca } : {}), timeoutMs: r.timeoutMs, retries: r.retries, observe });
  const resolver = new IronicNodeResolver(client, {
    autoEnable: r.autoEnableConsole,
    enableTimeoutMs: r.enableTimeoutMs,
    rules: { defaultProfile: r.defaultProfile, byNode: r.profilesByNode, byConsoleInterface: r.profilesByConsoleInterface, byDriver: r.profilesByDriver },
    profiles: config.profiles,
  });
  return { client, resolver };
}
