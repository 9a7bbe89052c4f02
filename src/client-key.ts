import { isIPv4 } from 'node:net';
import { formatIpAddress, parseIpAddress } from './target-policy.js';

/**
 * How many leading bits of an IPv6 address name one client. A /64 is the smallest network a
 * host or site is handed (SLAAC needs one), and one host can use any address in it: counting
 * full IPv6 addresses would let it step around every per-client limit.
 */
export const IPV6_CLIENT_PREFIX_BITS = 64;

const HOST_BITS = BigInt(128 - IPV6_CLIENT_PREFIX_BITS);

/**
 * The key per-client limits count a client address under (the per-client connection cap, the
 * invalid-link cool-down): an IPv4 address as itself; an IPv4-mapped IPv6 address (how a
 * dual-stack `[::]` listener shows IPv4 clients) as the IPv4 address; any other IPv6 address as
 * its /64, written `2001:db8:1:2::/64`. Anything that is not an IP address is kept as it is
 * (lower-cased). Logs keep showing the full address; this is only what is counted.
 */
export function clientKey(address: string): string {
  // The common case, as Node reports an IPv4 peer: itself, without parsing it into a number.
  if (isIPv4(address)) return address;
  const ip = parseIpAddress(address);
  if (ip === null) return address.toLowerCase();
  if (ip.family === 4) return formatIpAddress(ip);
  return `${formatIpAddress({ family: 6, value: (ip.value >> HOST_BITS) << HOST_BITS })}/${IPV6_CLIENT_PREFIX_BITS}`;
}
