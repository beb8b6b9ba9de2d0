import type { FastifyRequest } from 'fastify';
import { deliveryUrl, type DeliveryOptions } from '@pixq/client/delivery';
import type { Asset, DeliverySettings, Job } from '../engine/index.js';
import type { ApiDeps } from './deps.js';
import type { AssetRefs } from './views.js';

/**
 * Delivery URLs for the API's answers: on PIXQ_DELIVERY_URL (a CDN in front of pixq) or PIXQ_PUBLIC_URL when
 * set, else on the origin the request came to, so every URL handed out is absolute and can be stored as it is.
 */

/** Formats a URL can name (`@ext`): an original in one of them is served as its own bytes. */
const URL_FORMATS: Record<string, DeliveryOptions['format']> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

/** The thumbnails the dashboard shows: within 320 px, in the format the browser prefers. */
const THUMBNAIL: DeliveryOptions = { resizingType: 'fit', width: 320, height: 320 };

export function deliveryBase(deps: Pick<ApiDeps, 'config'>, request: FastifyRequest): string {
  return deps.config.delivery.baseUrl ?? `${request.protocol}://${request.host}`;
}

export function deliveryEndpoint(base: string, vendorName: string): string {
  return `${base}/i/${vendorName}`;
}

/** The URLs of one vendor's assets: the original (exact bytes, immutable) and a thumbnail. */
export function assetUrlsOf(base: string, vendorName: string, settings: DeliverySettings) {
  const credentials = { endpoint: deliveryEndpoint(base, vendorName), ...settings.current };
  return (asset: Asset) => ({
    url: deliveryUrl(asset.path, { cachebuster: asset.version, format: URL_FORMATS[asset.contentType] }, credentials),
    thumbnailUrl: deliveryUrl(asset.path, { ...THUMBNAIL, cachebuster: asset.version }, credentials),
  });
}

/** The URL maker for the calling vendor's assets. */
export async function assetUrls(deps: ApiDeps, request: FastifyRequest, vendor: { id: string; name: string }) {
  return assetUrlsOf(deliveryBase(deps, request), vendor.name, await deps.engine.delivery.get(vendor.id));
}

/**
 * Which published asset holds each output of `jobs` now: one store read for all of them (none unless one has
 * succeeded), and the delivery settings of each vendor that has one.
 */
export async function assetRefsOf(deps: ApiDeps, request: FastifyRequest, jobs: Job[]): Promise<AssetRefs> {
  const succeeded = jobs.filter((j) => j.state === 'succeeded').map((j) => j.id);
  if (succeeded.length === 0) return () => null;
  const assets = await deps.engine.assets.ofJobs(succeeded);
  if (assets.length === 0) return () => null;
  const urlsByVendor = new Map<string, ReturnType<typeof assetUrlsOf>>();
  for (const vendorId of new Set(assets.map((a) => a.vendorId))) {
    const vendor = await deps.engine.vendors.get(vendorId);
    urlsByVendor.set(
      vendorId,
      assetUrlsOf(deliveryBase(deps, request), vendor.name, await deps.engine.delivery.get(vendorId)),
    );
  }
  return (job, output) => {
    const asset = assets.find((a) => a.jobId === job.id && a.blob === output.blob);
    return asset
      ? { path: asset.path, version: asset.version, url: urlsByVendor.get(asset.vendorId)!(asset).url }
      : null;
  };
}
