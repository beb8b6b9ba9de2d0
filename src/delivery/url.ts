import { PixqError } from '../errors.js';

/**
 * Delivery URLs in imgproxy's format, so imgproxy's URL builders (imgproxy-node, imgproxy-js-core, the Ruby and
 * Python libraries, Nuxt Image's provider) build pixq URLs when given `<base>/i/<vendor>` as their endpoint:
 *
 *   /i/<vendor>/<signature>/<option>/<option>/.../plain/<asset path>[@<extension>]
 *   /i/<vendor>/<signature>/<option>/.../<base64url of the asset path>[.<extension>]
 *
 * An option is `name:arg:arg...`; the options end at the first part without a `:`. The signature covers
 * everything after it, exactly as sent (percent-escapes included), so it is checked on the raw path.
 */

export interface UrlOption {
  name: string;
  args: string[];
}

export interface DeliveryPath {
  vendor: string;
  signature: string;
  /** The part the signature covers: `/` and everything after the signature, as sent. */
  signed: string;
  options: UrlOption[];
  /** The asset path, decoded. */
  assetPath: string;
  /** `@webp` or `.webp` after the source; undefined when none was given. */
  extension: string | undefined;
}

/** The longest delivery path pixq reads: options, a 255-character asset path and escapes fit well within it. */
export const MAX_DELIVERY_PATH = 4096;

export function badUrl(message: string): PixqError {
  return new PixqError('invalid_url', message, { status: 400 });
}

/** Parses the path after `/i/` (without a query string). Throws `invalid_url` (400) for anything malformed. */
export function parseDeliveryPath(raw: string): DeliveryPath {
  if (raw.length > MAX_DELIVERY_PATH) throw badUrl(`the URL is longer than ${MAX_DELIVERY_PATH} characters`);
  const parts = raw.split('/');
  if (parts.length < 3) throw badUrl('the URL needs a vendor, a signature and a source');
  const [vendor, signature, ...rest] = parts;
  const signed = '/' + rest.join('/');
  const firstSource = rest.findIndex((part) => !part.includes(':'));
  if (firstSource === -1) throw badUrl('the URL names no source after its options');
  const options = rest.slice(0, firstSource).map(parseOption);
  const source = rest.slice(firstSource);
  const { assetPath, extension } =
    source[0] === 'plain' && source.length > 1 ? decodePlain(source.slice(1)) : decodeBase64(source);
  return { vendor: decodeVendor(vendor), signature, signed, options, assetPath, extension };
}

function decodeVendor(part: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(part)) throw badUrl('the URL does not name a vendor');
  return part;
}

function parseOption(part: string): UrlOption {
  const [name, ...args] = part.split(':');
  return { name: unescape(name), args: args.map(unescape) };
}

function decodePlain(parts: string[]): { assetPath: string; extension: string | undefined } {
  const joined = parts.join('/');
  const at = joined.split('@');
  if (at.length > 2) throw badUrl('the source names more than one format (@)');
  return { assetPath: unescape(at[0]), extension: at[1] || undefined };
}

function decodeBase64(parts: string[]): { assetPath: string; extension: string | undefined } {
  const joined = parts.join('');
  const dot = joined.split('.');
  if (dot.length > 2) throw badUrl('the source names more than one format (.)');
  if (!/^[A-Za-z0-9_-]+=*$/.test(dot[0])) throw badUrl('the source is neither plain/<path> nor base64url');
  const assetPath = Buffer.from(dot[0].replace(/=+$/, ''), 'base64url').toString('utf8');
  return { assetPath, extension: dot[1] || undefined };
}

function unescape(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw badUrl('the URL has a malformed percent-escape');
  }
}
