import { isIPv4, isIPv6 } from 'node:net';

/**
 * Where static console targets may point (`backends.allowedTargets`): pure matching, no I/O.
 * Callers resolve names themselves and check every address they would connect to.
 *
 * An entry is "CIDR", "CIDR:port", "CIDR:lo-hi", "[v6 CIDR]", "[v6 CIDR]:port" or
 * "[v6 CIDR]:lo-hi"; a bare address is a /32 or /128. An unbracketed IPv6 CIDR has no port part.
 *
 * The special ranges below (loopback, link-local, unspecified, multicast, reserved, IPv4-compatible
 * IPv6) are where a console proxy reaches the control plane instead of a console: its own loopback
 * services, the cloud metadata service at 169.254.169.254. An address in one of them is allowed
 * only by an entry that itself lies inside that range (so `0.0.0.0/0` never opens them, while
 * `127.0.0.0/8` or `169.254.169.254/32:80` does). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) reach
 * the IPv4 address, so they are matched as that IPv4 address.
 */

export type IpFamily = 4 | 6;

/** An address as an unsigned integer of 32 (IPv4) or 128 (IPv6) bits. */
export type IpAddress = { readonly family: IpFamily; readonly value: bigint };

type Cidr = { readonly family: IpFamily; readonly network: bigint; readonly prefix: number };

export type TargetPolicyEntry = Cidr & { readonly text: string; readonly portLo: number; readonly portHi: number };

export type TargetVerdict = { readonly allowed: true } | { readonly allowed: false; readonly why: string };

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

/** ::ffff:0:0/96 (RFC 4291 §2.5.5.2): IPv4 addresses in IPv6 form. */
const MAPPED_NETWORK = 0xffffn << 32n;

/** Ranges refused unless an entry inside them names them; RFC 6890 special-purpose registries. */
const SPECIAL_RANGES = [
  { cidr: '0.0.0.0/8', what: 'unspecified ("this network")' }, // RFC 1122 §3.2.1.3: never a destination; Linux dials 0.0.0.0 as loopback
  { cidr: '127.0.0.0/8', what: 'loopback' }, // RFC 1122 §3.2.1.3
  { cidr: '169.254.0.0/16', what: 'link-local' }, // RFC 3927; cloud metadata services live at 169.254.169.254
  { cidr: '224.0.0.0/4', what: 'multicast' }, // RFC 5771
  { cidr: '240.0.0.0/4', what: 'reserved or broadcast' }, // RFC 1112 §4; 255.255.255.255 is limited broadcast (RFC 919)
  { cidr: '::/128', what: 'unspecified' }, // RFC 4291 §2.5.2
  { cidr: '::1/128', what: 'loopback' }, // RFC 4291 §2.5.3
  { cidr: '::/96', what: 'IPv4-compatible (deprecated)' }, // RFC 4291 §2.5.5.1
  // Prefixes that carry an IPv4 address a gateway translates to (169.254.169.254 among them).
  { cidr: '64:ff9b::/96', what: 'NAT64 (embeds an IPv4 address)' }, // RFC 6052 §2.1
  { cidr: '64:ff9b:1::/48', what: 'local-use NAT64 (embeds an IPv4 address)' }, // RFC 8215
  { cidr: '2002::/16', what: '6to4 (embeds an IPv4 address)' }, // RFC 3056 §2
  { cidr: '2001::/32', what: 'Teredo (embeds an IPv4 address)' }, // RFC 4380 §4
  { cidr: 'fe80::/10', what: 'link-local' }, // RFC 4291 §2.5.6
  { cidr: 'ff00::/8', what: 'multicast' }, // RFC 4291 §2.7
] as const;

type SpecialRange = Cidr & { readonly what: string };

const SPECIALS: readonly SpecialRange[] = SPECIAL_RANGES.map(({ cidr, what }) => {
  const parsed = parseCidr(cidr);
  if (typeof parsed === 'string') throw new Error(`bad built-in range ${cidr}: ${parsed}`);
  return { ...parsed, what };
});

function parseIPv4(s: string): bigint | null {
  if (!isIPv4(s)) return null;
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseIPv6(s: string): bigint | null {
  if (!isIPv6(s)) return null;
  let text = s;
  // A dotted IPv4 tail ("::ffff:1.2.3.4") becomes its two 16-bit groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    if (v4 === null) return null;
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const groups = [...head, ...Array<string>(Math.max(0, fill)).fill('0'), ...rest];
  if (groups.length !== 8) return null;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * Parses a literal IPv4 or IPv6 address (an IPv6 zone, "%eth0", is dropped: it only picks the
 * interface). IPv4-mapped IPv6 addresses come back as IPv4. Null for anything else.
 */
export function parseIpAddress(text: string): IpAddress | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, value: v4 };
  const pct = text.indexOf('%');
  const v6 = parseIPv6(pct === -1 ? text : text.slice(0, pct));
  if (v6 === null) return null;
  if (v6 >> 32n === MAPPED_NETWORK >> 32n) return { family: 4, value: v6 & 0xffff_ffffn };
  return { family: 6, value: v6 };
}

function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash === -1 ? text : text.slice(0, slash);
  const v4 = parseIPv4(addr);
  const v6 = v4 === null && !addr.includes('%') ? parseIPv6(addr) : null;
  if (v4 === null && v6 === null) return `${JSON.stringify(addr)} is not an IPv4 or IPv6 address`;
  const family: IpFamily = v4 !== null ? 4 : 6;
  const bits = BITS[family];
  let prefix = bits;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return `prefix length must be 0 to ${bits}`;
    prefix = Number(p);
  }
  const network = (v4 ?? v6)!;
  if (network !== mask(network, family, prefix)) {
    return `has bits set beyond the /${prefix} prefix (did you mean ${format(mask(network, family, prefix), family)}/${prefix}?)`;
  }
  if (family === 6 && prefix >= 96 && network >> 32n === MAPPED_NETWORK >> 32n) {
    return 'IPv4-mapped IPv6 addresses are matched as IPv4: write this range in IPv4 form';
  }
  return { family, network, prefix };
}

function mask(value: bigint, family: IpFamily, prefix: number): bigint {
  const host = BigInt(BITS[family] - prefix);
  return (value >> host) << host;
}

function contains(range: Cidr, family: IpFamily, value: bigint): boolean {
  return range.family === family && mask(value, family, range.prefix) === range.network;
}

/** True when all of `inner` lies inside `outer`. */
function within(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && contains(outer, inner.family, inner.network);
}

function format(value: bigint, family: IpFamily): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // RFC 5952 §4.2: the longest run of two or more zero groups (the first if tied) becomes "::".
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  if (best.at === -1) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

function parsePorts(text: string | undefined): { lo: number; hi: number } | string {
  if (text === undefined) return { lo: 1, hi: 65535 };
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return `port part ${JSON.stringify(text)} is not a port or a lo-hi range`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return 'ports must be 1 to 65535, low before high';
  return { lo, hi };
}

/** Parses one entry; a string is the problem with it. */
export function parseTargetPolicyEntry(text: string): TargetPolicyEntry | string {
  const t = text.trim();
  let cidrText: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(t);
  if (bracketed) {
    cidrText = bracketed[1]!;
    portText = bracketed[2];
    if (!isIPv6(cidrText.split('/')[0]!)) return 'only IPv6 goes in brackets';
  } else if (t.indexOf(':') !== t.lastIndexOf(':')) {
    cidrText = t; // IPv6 without brackets: no port part
  } else {
    const colon = t.indexOf(':');
    cidrText = colon === -1 ? t : t.slice(0, colon);
    portText = colon === -1 ? undefined : t.slice(colon + 1);
  }
  const cidr = parseCidr(cidrText);
  if (typeof cidr === 'string') return cidr;
  const ports = parsePorts(portText);
  if (typeof ports === 'string') return ports;
  return { ...cidr, text: t, portLo: ports.lo, portHi: ports.hi };
}

/** A compiled `backends.allowedTargets`. */
export class TargetPolicy {
  readonly entries: readonly TargetPolicyEntry[];
  /** Each entry's IPv4 network as a number (-1 for IPv6): the common case, checked without BigInt. */
  readonly #v4: readonly number[];

  constructor(entries: readonly TargetPolicyEntry[]) {
    this.entries = entries;
    this.#v4 = entries.map((e) => (e.family === 4 ? Number(e.network) : -1));
  }

  /** Whether vncgate may connect to `address` (a literal IP, e.g. from DNS) on `port`. */
  check(address: string, port: number): TargetVerdict {
    // Dotted IPv4 with numbers only; a refusal (and anything else) takes the general path below,
    // which reaches the same verdict and words its reason.
    const v4 = isIPv4(address) ? ipv4Number(address) : -1;
    if (v4 !== -1 && this.#allowsV4(v4, port)) return ALLOWED;
    const ip = parseIpAddress(address);
    if (ip === null) return { allowed: false, why: `${JSON.stringify(address)} is not an IP address` };
    const specials = SPECIALS.filter((s) => contains(s, ip.family, ip.value));
    const ok = this.entries.some(
      (e) =>
        port >= e.portLo &&
        port <= e.portHi &&
        contains(e, ip.family, ip.value) &&
        (specials.length === 0 || specials.some((s) => within(e, s))),
    );
    if (ok) return { allowed: true };
    const shown = `${ip.family === 6 ? `[${format(ip.value, 6)}]` : format(ip.value, 4)}:${port}`;
    if (specials.length > 0) {
      return { allowed: false, why: `${shown} is a ${specials[0]!.what} address; no backends.allowedTargets entry inside that range names it` };
    }
    return { allowed: false, why: `${shown} is not covered by backends.allowedTargets` };
  }

  /** `check` for an IPv4 address: the same rule, in 32-bit numbers. */
  #allowsV4(v: number, port: number): boolean {
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const net = this.#v4[i]!;
      if (net === -1 || port < e.portLo || port > e.portHi || !inV4(net, e.prefix, v)) continue;
      let special = false;
      let inside = false;
      for (const s of SPECIALS_V4) {
        if (!inV4(s.net, s.prefix, v)) continue;
        special = true;
        if (e.prefix >= s.prefix && inV4(s.net, s.prefix, net)) inside = true;
      }
      if (!special || inside) return true;
    }
    return false;
  }
}

const ALLOWED: TargetVerdict = Object.freeze({ allowed: true });

/** The IPv4 special ranges, as numbers. */
const SPECIALS_V4 = SPECIALS.filter((s) => s.family === 4).map((s) => ({ net: Number(s.network), prefix: s.prefix }));

/** A dotted IPv4 address (already checked with isIPv4) as an unsigned 32-bit number. */
function ipv4Number(s: string): number {
  let v = 0;
  let part = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      v = v * 256 + part;
      part = 0;
    } else part = part * 10 + (c - 48);
  }
  return v * 256 + part;
}

/** Whether `v` lies in `net`/`prefix` (IPv4, unsigned 32-bit numbers). */
function inV4(net: number, prefix: number, v: number): boolean {
  return prefix === 0 || ((v ^ net) >>> (32 - prefix)) === 0;
}

export type TargetPolicyResult = { readonly ok: true; readonly policy: TargetPolicy } | { readonly ok: false; readonly problems: readonly string[] };

/** Compiles `backends.allowedTargets`, reporting every bad entry. */
export function compileTargetPolicy(entries: readonly string[]): TargetPolicyResult {
  const problems: string[] = [];
  const compiled: TargetPolicyEntry[] = [];
  entries.forEach((text, i) => {
    const e = parseTargetPolicyEntry(text);
    if (typeof e === 'string') problems.push(`backends.allowedTargets[${i}]: ${JSON.stringify(text)}: ${e}`);
    else compiled.push(e);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, policy: new TargetPolicy(compiled) };
}

/**
 * A set of address ranges without ports (`trustedProxies`): "CIDR" or a bare address, IPv4 or
 * IPv6. Unlike the target policy there are no special ranges: a load balancer on loopback is
 * named like any other. IPv4-mapped IPv6 addresses match as their IPv4 address.
 */
export class AddressSet {
  readonly #ranges: readonly Cidr[];

  constructor(ranges: readonly Cidr[]) {
    this.#ranges = ranges;
  }

  get size(): number {
    return this.#ranges.length;
  }

  /** Whether `address` (a literal IP; anything else is not in the set) lies in one of the ranges. */
  has(address: string | undefined): boolean {
    if (address === undefined || this.#ranges.length === 0) return false;
    const ip = parseIpAddress(address);
    return ip !== null && this.#ranges.some((r) => contains(r, ip.family, ip.value));
  }
}

export type AddressSetResult = { readonly ok: true; readonly set: AddressSet } | { readonly ok: false; readonly problems: readonly string[] };

/** Compiles a list of CIDRs or bare addresses named `option` in messages, reporting every bad entry. */
export function compileAddressSet(option: string, entries: readonly string[]): AddressSetResult {
  const problems: string[] = [];
  const ranges: Cidr[] = [];
  entries.forEach((text, i) => {
    const c = parseCidr(text.trim());
    if (typeof c === 'string') problems.push(`${option}[${i}]: ${JSON.stringify(text)}: ${c}`);
    else ranges.push(c);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, set: new AddressSet(ranges) };
}

/** An address as text: dotted IPv4, or RFC 5952 IPv6. */
export function formatIpAddress(ip: IpAddress): string {
  return format(ip.value, ip.family);
}
