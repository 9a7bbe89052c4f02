import { readSecret, type ReadFile } from './openstack-settings.js';
import { parseListen } from './resolve.js';
import type { RawConfig } from './schema.js';
import type { ListenAddress, RedisSettings } from './types.js';

export /** Exactly one of url, sentinels, cluster (or none: in-memory tokens); passwords read from files. */
function resolveRedis(r: RawConfig['redis'], readFile: ReadFile, problems: string[]): RedisSettings | null {
  const given = [r.url !== null ? 'url' : null, r.sentinels.length > 0 ? 'sentinels' : null, r.cluster.length > 0 ? 'cluster' : null].filter((g) => g !== null);
  if (given.length > 1) problems.push(`redis: ${given.join(' and ')} are set; give exactly one`);
  const endpoints = (what: string, list: readonly string[]): ListenAddress[] =>
    list.flatMap((s) => {
      const a = parseListen(s);
      if (a === null || a.port === 0 || s.startsWith(':')) {
        problems.push(`redis.${what}: ${JSON.stringify(s)} is not host:port or [ipv6]:port`);
        return [];
      }
      return [a];
    });
  const sentinels = endpoints('sentinels', r.sentinels);
  const cluster = endpoints('cluster', r.cluster);
  const password = r.passwordFile !== null ? readSecret(readFile, problems, 'redis.passwordFile', r.passwordFile) : null;
  const common = { username: r.username, password, waitTimeoutMs: r.waitTimeoutMs };
  if (given.length !== 1) return null;
  const waitReplicas = r.waitReplicas ?? (r.url !== null ? 0 : 1);
  if (waitReplicas > 0 && 2 * r.waitTimeoutMs >= r.commandTimeoutMs) problems.push('redis.waitTimeoutMs: must be less than half of redis.commandTimeoutMs');
  if (r.url !== null) {
    try {
      const u = new URL(r.url);
      if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') problems.push('redis.url: must start with redis:// or rediss://');
      if (r.passwordFile !== null || r.username !== null) problems.push('redis.username, redis.passwordFile: only with sentinels or cluster (a url carries its own credentials)');
    } catch {
      problems.push('redis.url: not a URL');
    }
    return { mode: 'url', url: r.url, ...common, waitReplicas };
  }
  if (r.sentinels.length > 0) {
    const sentinelPassword = r.sentinelPasswordFile !== null ? readSecret(readFile, problems, 'redis.sentinelPasswordFile', r.sentinelPasswordFile) : null;
    return { mode: 'sentinel', sentinels, sentinelName: r.sentinelName, sentinelPassword, ...common, waitReplicas };
  }
  if (/[{}]/.test(r.keyPrefix)) problems.push('redis.keyPrefix: must not contain { or } with a Redis Cluster (hash tags)');
  return { mode: 'cluster', cluster, ...common, waitReplicas };
}
