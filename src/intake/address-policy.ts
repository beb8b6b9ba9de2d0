import ipaddr from 'ipaddr.js';
import { ConfigError } from '../config.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/**
 * Which destinations a URL download may reach. Policy: an address is allowed only if ipaddr.js classifies it
 * as plain `unicast`. Everything else (loopback, RFC 1918 private, link-local incl. 169.254.169.254, CGNAT
 * incl. 100.100.100.200, unique-local fc00::/7 incl. fd00:ec2::254, multicast, unspecified, broadcast, reserved,
 * benchmarking, NAT64 64:ff9b::/96, 6to4, Teredo, ...) is refused. Deny-by-default means a range we forgot
 * to list is refused rather than reachable. IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address
 * it maps to; the deprecated IPv4-compatible form (::a.b.c.d) is refused outright.
 */
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');

/** Named explicitly so the intent survives any change to ipaddr.js's range table. */
const METADATA_ADDRESSES = ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200'].map((a) => ipaddr.parse(a));

function unmap(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
    ? (address as ipaddr.IPv6).toIPv4Address()
    : address;
}

function sameAddress(a: Address, b: Address): boolean {
  return a.kind() === b.kind() && a.toNormalizedString() === b.toNormalizedString();
}

/** Parses an IP literal (IPv6 with or without brackets); undefined for anything else. */
export function parseIp(text: string): Address | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // isValid alone accepts legacy forms such as "1" or "0x7f.1"; only canonical literals count as IPs here.
  if (!ipaddr.IPv4.isValidFourPartDecimal(bare) && !(bare.includes(':') && ipaddr.IPv6.isValid(bare))) {
    return undefined;
  }
  return unmap(ipaddr.parse(bare));
}

/** Why `ip` may not be fetched from, or undefined if it is an ordinary public unicast address. */
export function forbiddenRange(ip: string): string | undefined {
  const address = parseIp(ip);
  if (!address) return 'unparseable';
  if (METADATA_ADDRESSES.some((m) => sameAddress(m, address))) return 'cloud metadata';
  // ipaddr.js's own range first: ::1 and :: sit inside ::/96 but are loopback and unspecified, and the
  // reason reported to the caller (and in job errors) should say so.
  const range = address.range();
  if (range !== 'unicast') return range;
  if (address.kind() === 'ipv6' && address.match(IPV4_COMPATIBLE)) return 'ipv4Compatible';
  return undefined;
}

export interface Allowlist {
  /** Exact hostnames, lowercase, without a trailing dot. */
  hosts: ReadonlySet<string>;
  /** IP literals (as /32 or /128) and CIDR ranges. */
  ranges: ReadonlyArray<[Address, number]>;
}

/**
 * Parses PIXQ_URL_ALLOWLIST entries: exact hostnames, IP literals or CIDR ranges. Hostname entries match the
 * URL's host name (never a wildcard, never its subdomains); IP and CIDR entries match only URLs whose host is
 * an IP literal in them. A name that happens to resolve into an allowlisted range is still checked, so DNS
 * cannot be used to reach an allowlisted internal network under an arbitrary name.
 */
export function parseAllowlist(entries: readonly string[]): Allowlist {
  // Every URL submission and download asks with the same config array: parse it once.
  let allowlist = parsedAllowlists.get(entries);
  if (!allowlist) {
    allowlist = parseEntries(entries);
    parsedAllowlists.set(entries, allowlist);
  }
  return allowlist;
}

const parsedAllowlists = new WeakMap<readonly string[], Allowlist>();

function parseEntries(entries: readonly string[]): Allowlist {
  const hosts = new Set<string>();
  const ranges: Array<[Address, number]> = [];
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw new ConfigError('PIXQ_URL_ALLOWLIST', `has an invalid CIDR range "${raw}"`);
      const [base, bits] = ipaddr.parseCIDR(entry);
      ranges.push(
        base.kind() === 'ipv6' && bits >= 96 && (base as ipaddr.IPv6).isIPv4MappedAddress()
          ? [unmap(base), bits - 96]
          : [base, bits],
      );
      continue;
    }
    const ip = parseIp(entry);
    if (ip) ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
    else if (/^[\d.]+$/.test(entry)) {
      // "127.1" would never match: URLs normalise it to 127.0.0.1. Better to say so at start-up.
      throw new ConfigError('PIXQ_URL_ALLOWLIST', `has an IPv4 address not in dotted-quad form: "${raw}"`);
    } else if (/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/.test(entry)) {
      hosts.add(entry.replace(/\.$/, ''));
    } else
      throw new ConfigError(
        'PIXQ_URL_ALLOWLIST',
        `has an entry that is neither a hostname, an IP nor a CIDR: "${raw}"`,
      );
  }
  return { hosts, ranges };
}

/** Whether a URL host (as `URL.hostname` gives it) is allowlisted. */
export function isAllowlisted(hostname: string, allowlist: Allowlist): boolean {
  const ip = parseIp(hostname);
  if (!ip) return allowlist.hosts.has(hostname.toLowerCase().replace(/\.$/, ''));
  return allowlist.ranges.some(([base, bits]) => base.kind() === ip.kind() && ip.match(base, bits));
}
