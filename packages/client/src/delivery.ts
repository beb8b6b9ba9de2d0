/**
 * Delivery URLs for Node (`@pixq/client/delivery`; it signs with node:crypto, so browsers use the URLs the API
 * hands out instead). The format is imgproxy's, so imgproxy's own URL builders work as well; this one is for
 * code that does not want another dependency. The server checks signatures with `signDeliveryPath` too.
 */
import { createHmac } from 'node:crypto';

/** A vendor's delivery endpoint and signing pair, as `GET /v1/delivery` answers them (key and salt in hex). */
export interface DeliveryCredentials {
  /** `https://pixq.example.com/i/<vendor>` (or a CDN in front of it). */
  endpoint: string;
  key: string;
  salt: string;
}

/** The processing options delivery URLs may carry (imgproxy's names; see the README's options table). */
export interface DeliveryOptions {
  resizingType?: 'fit' | 'fill' | 'fill-down' | 'force' | 'auto';
  width?: number;
  height?: number;
  dpr?: number;
  enlarge?: boolean;
  /** Pad a smaller result to the requested size; a gravity places it (default centre). */
  extend?: boolean | { gravity: string };
  /** `no`, `so`, `ea`, `we`, `noea`, `nowe`, `soea`, `sowe`, `ce`, `sm`, or `fp:x:y`. */
  gravity?: string;
  /** RRGGBB hex. */
  background?: string;
  quality?: number;
  format?: 'png' | 'jpg' | 'jpeg' | 'webp' | 'avif';
  /** The asset's version: URLs that carry the current one are cached for a year. */
  cachebuster?: string;
  preset?: string | string[];
}

/** imgproxy's signature of the part of a path after the signature: base64url HMAC-SHA256(key, salt + path). */
export function signDeliveryPath(pair: { key: string; salt: string }, path: string): string {
  return createHmac('sha256', Buffer.from(pair.key, 'hex'))
    .update(Buffer.from(pair.salt, 'hex'))
    .update(path)
    .digest('base64url');
}

/** The options as imgproxy URL parts, in a fixed order (short names); the format goes with the source. */
export function deliveryOptionParts(o: DeliveryOptions): string[] {
  const parts: string[] = [];
  const bool = (value: boolean) => (value ? '1' : '0');
  if (o.resizingType !== undefined) parts.push(`rt:${o.resizingType}`);
  if (o.width !== undefined) parts.push(`w:${o.width}`);
  if (o.height !== undefined) parts.push(`h:${o.height}`);
  if (o.dpr !== undefined) parts.push(`dpr:${o.dpr}`);
  if (o.enlarge !== undefined) parts.push(`el:${bool(o.enlarge)}`);
  if (o.extend !== undefined) {
    parts.push(typeof o.extend === 'boolean' ? `ex:${bool(o.extend)}` : `ex:1:${o.extend.gravity}`);
  }
  if (o.gravity !== undefined) parts.push(`g:${o.gravity}`);
  if (o.background !== undefined) parts.push(`bg:${o.background.replace(/^#/, '')}`);
  if (o.quality !== undefined) parts.push(`q:${o.quality}`);
  if (o.preset !== undefined) parts.push(`pr:${[o.preset].flat().join(':')}`);
  if (o.cachebuster !== undefined) parts.push(`cb:${o.cachebuster}`);
  return parts;
}

/** A signed delivery URL of the asset at `path` with `options` (the format as the source's `@extension`). */
export function deliveryUrl(path: string, options: DeliveryOptions, credentials: DeliveryCredentials): string {
  const source = `plain/${encodeURI(path)}${options.format === undefined ? '' : `@${options.format}`}`;
  const signed = `/${[...deliveryOptionParts(options), source].join('/')}`;
  return `${credentials.endpoint.replace(/\/+$/, '')}/${signDeliveryPath(credentials, signed)}${signed}`;
}
