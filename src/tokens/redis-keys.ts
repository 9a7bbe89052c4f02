import { clientKey } from '../client-key.js';
import { hashToken } from './token.js';

/**
 * The Redis key names of the token store.
 *
 * Single server and Sentinel: `<prefix>tok:<sha256>`, `<prefix>lim:<slot key>`, `<prefix>bad:<h>`,
 * `<prefix>cool:<h>`, `<prefix>used:<h>`, `<prefix>lease:<h>`, `<prefix>rev:<sha256>` — the names
 * earlier versions used, so an upgrade keeps every live token, counter and session slot.
 *
 * Redis Cluster runs a script only if all its keys hash to one slot, and only the part of a key
 * inside its first `{…}` (the hash tag) is hashed. Cluster names therefore carry tags:
 * - `<prefix>tok:{<sha256>}` and `<prefix>rev:{<sha256>}` share the token's slot, so a restore
 *   (after a consume that did not reach a replica) can check the revocation mark atomically;
 * - `<prefix>bad:{<h>}` and `<prefix>cool:{<h>}` share the address' slot (one counting script);
 * - every session-slot set is `<prefix>{lim}:<slot key>`: one acquire takes an endpoint's and its
 *   node's sets together, and endpoints and nodes form no partition one could tag by, so all
 *   sets live on one shard (few, small, touched once per session start and lease period).
 * A consume on a cluster cannot be one script (the token's slot is not the target's), so
 * redis-store.ts takes the session slots first and gives them back if the token is refused.
 * The prefix must then hold no braces, or its own tag would override these (checked at start).
 */
export class RedisKeys {
  readonly #prefix: string;
  readonly #cluster: boolean;

  constructor(prefix: string, cluster: boolean) {
    this.#prefix = prefix;
    this.#cluster = cluster;
  }

  /** Whether multi-key scripts may only touch one hash tag (Redis Cluster). */
  get cluster(): boolean {
    return this.#cluster;
  }

  #tagged(kind: string, hash: string): string {
    return this.#cluster ? `${this.#prefix}${kind}:{${hash}}` : `${this.#prefix}${kind}:${hash}`;
  }

  token(token: string): string {
    return this.#tagged('tok', hashToken(token));
  }

  /** The short-lived mark `revoke` leaves, so a restore never brings a revoked token back. */
  revoked(token: string): string {
    return this.#tagged('rev', hashToken(token));
  }

  /** A reconnect grant (a hash: record and bindings), by the grant's hash. */
  grant(secret: string): string {
    return this.#tagged('grant', hashToken(secret));
  }

  /** The short-lived mark a consumed grant leaves, so its old session learns it was replaced (same hash tag). */
  grantUsed(secret: string): string {
    return this.#tagged('grantused', hashToken(secret));
  }

  /** A session-slot set (keys name endpoints, nodes, instances; never a token). */
  slot(key: string): string {
    return this.#cluster ? `${this.#prefix}{lim}:${key}` : `${this.#prefix}lim:${key}`;
  }

  /** A client's invalid-link counter, by the hash of its `clientKey` (IPv6: its /64). */
  bad(client: string): string {
    return this.#tagged('bad', hashToken(clientKey(client)));
  }

  /** A client's cool-down mark, by the hash of its `clientKey` (IPv6: its /64). */
  cool(client: string): string {
    return this.#tagged('cool', hashToken(clientKey(client)));
  }

  /** Single-use claims and one-session leases (always one key per script). */
  lease(kind: 'used' | 'lease', key: string): string {
    return `${this.#prefix}${kind}:${hashToken(key)}`;
  }
}
