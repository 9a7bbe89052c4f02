import { VncgateError } from '../errors.js';
import type { TargetPolicy } from '../target-policy.js';
import type { ConsoleTarget } from '../tokens/index.js';
import type { BackendSecurity, ResolvedTarget, TargetResolver } from '../target.js';

/**
 * Resolves static targets (host:port + named profile) from the configured profiles. The target
 * policy travels with them: the connector checks it again after resolving the name, whatever was
 * checked when the token was issued (DNS may have changed since, or another replica issued it).
 */
export class StaticTargetResolver implements TargetResolver {
  readonly #profiles: ReadonlyMap<string, BackendSecurity>;
  readonly #defaultProfile: string;
  readonly policy: TargetPolicy;

  constructor(profiles: ReadonlyMap<string, BackendSecurity>, defaultProfile: string, policy: TargetPolicy) {
    this.#profiles = profiles;
    this.#defaultProfile = defaultProfile;
    this.policy = policy;
  }

  hasProfile(name: string): boolean {
    return this.#profiles.has(name);
  }

  async resolve(target: ConsoleTarget): Promise<ResolvedTarget> {
    if (target.kind !== 'static') {
      throw new VncgateError('SESSION_ERR_TARGET_UNSUPPORTED', `target kind ${target.kind} is not configured`);
    }
    const profile = target.profile ?? this.#defaultProfile;
    const security = this.#profiles.get(profile);
    if (!security) {
      // A token minted against a profile that a later configuration removed.
      throw new VncgateError('CONFIG_ERR_INVALID', `token names backend profile ${JSON.stringify(profile)}, which is not configured`);
    }
    const label = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
    return { host: target.host, port: target.port, security, profile, label, policy: this.policy };
  }
}
