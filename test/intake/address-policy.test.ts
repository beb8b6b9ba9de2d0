import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { forbiddenRange, isAllowlisted, parseAllowlist } from '../../src/intake/index.js';

const FORBIDDEN_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

const FORBIDDEN_V6 = ['::1/128', '::/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '64:ff9b::/96', '2002::/16'];

/** A uniformly random address inside a CIDR range. */
function inRange(cidr: string): fc.Arbitrary<string> {
  const [base, bits] = ipaddr.parseCIDR(cidr);
  const bytes = base.toByteArray();
  return fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: bytes.length, maxLength: bytes.length })
    .map((noise) => {
      const mixed = bytes.map((b, i) => {
        const fixedBits = Math.max(0, Math.min(8, bits - i * 8));
        const mask = (0xff << (8 - fixedBits)) & 0xff;
        return (b & mask) | (noise[i] & ~mask & 0xff);
      });
      return ipaddr.fromByteArray(mixed).toString();
    });
}

describe('forbiddenRange', () => {
  it.each([...FORBIDDEN_V4, ...FORBIDDEN_V6])('refuses every address in %s', (cidr) => {
    fc.assert(
      fc.property(inRange(cidr), (ip) => forbiddenRange(ip) !== undefined),
      { numRuns: 200 },
    );
  });

  it.each([
    '169.254.169.254',
    'fd00:ec2::254',
    '100.100.100.200',
    '255.255.255.255',
    '::ffff:127.0.0.1',
    '::ffff:10.1.2.3',
    '::7f00:1',
  ])('refuses %s', (ip) => {
    expect(forbiddenRange(ip)).toBeDefined();
  });

  it.each(['8.8.8.8', '1.1.1.1', '151.101.1.69', '2606:4700:4700::1111', '2a00:1450:4001:82b::200e'])(
    'allows the public address %s',
    (ip) => {
      expect(forbiddenRange(ip)).toBeUndefined();
    },
  );

  it('judges an IPv4-mapped IPv6 address exactly like the IPv4 address', () => {
    fc.assert(
      fc.property(
        fc.ipV4(),
        (ip) => (forbiddenRange(`::ffff:${ip}`) === undefined) === (forbiddenRange(ip) === undefined),
      ),
      { numRuns: 500 },
    );
  });

  it('refuses what it cannot parse', () => {
    expect(forbiddenRange('not-an-ip')).toBe('unparseable');
    expect(forbiddenRange('0x7f.1')).toBe('unparseable');
  });
});

describe('allowlist', () => {
  const allow = parseAllowlist(['images.example.com', '127.0.0.1', '10.1.0.0/16', '::1']);

  it('matches hostnames exactly, ignoring case and a trailing dot', () => {
    expect(isAllowlisted('images.example.com', allow)).toBe(true);
    expect(isAllowlisted('IMAGES.example.com.', allow)).toBe(true);
    expect(isAllowlisted('evil.images.example.com', allow)).toBe(false);
    expect(isAllowlisted('images.example.com.evil.net', allow)).toBe(false);
  });

  it('matches IP literals and CIDR ranges only for IP hosts', () => {
    expect(isAllowlisted('127.0.0.1', allow)).toBe(true);
    expect(isAllowlisted('127.0.0.2', allow)).toBe(false);
    expect(isAllowlisted('10.1.200.3', allow)).toBe(true);
    expect(isAllowlisted('10.2.0.1', allow)).toBe(false);
    expect(isAllowlisted('[::1]', allow)).toBe(true);
    expect(isAllowlisted('[::ffff:7f00:1]', allow)).toBe(true);
    expect(isAllowlisted('localhost', allow)).toBe(false);
  });

  it.each(['10.0.0.0/33', 'not a host', 'http://x.com', '127.1', '*.example.com'])('refuses the entry %j', (entry) => {
    expect(() => parseAllowlist([entry])).toThrow(ConfigError);
  });
});
