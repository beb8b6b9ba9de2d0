import { deliveryUrl, type DeliveryOptions } from '@pixq/client/delivery';
import type { AssetRef } from '@pixq/client/schemas';
import type { Asset, DeliverySettings, Engine, Job, JobOutput } from '../engine/index.js';

/**
 * The delivery URLs pixq hands out (API answers, webhooks, compat answers), signed with the vendor's current
 * key: the original (its exact bytes, cached for a year since the URL carries the asset's version) and a
 * thumbnail for listings.
 */

/** Formats a URL can name (`@ext`): an original in one of them is served as its own bytes. */
const URL_FORMATS: Record<string, DeliveryOptions['format']> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/avif': 'avif',
};

/** The side of the thumbnails pixq links to in listings (assets, and job outputs through their signed links). */
export const THUMBNAIL_SIDE = 320;

/** Thumbnails for listings: within THUMBNAIL_SIDE, in the format the browser prefers. */
const THUMBNAIL: DeliveryOptions = { resizingType: 'fit', width: THUMBNAIL_SIDE, height: THUMBNAIL_SIDE };

export function deliveryEndpoint(base: string, vendorName: string): string {
  return `${base}/i/${vendorName}`;
}

export type AssetUrls = (asset: Asset) => { url: string; thumbnailUrl: string };

/** The URL maker for one vendor's assets, on `base` (absolute, or '' for relative URLs). */
export function assetUrlsOf(base: string, vendorName: string, settings: DeliverySettings): AssetUrls {
  const credentials = { endpoint: deliveryEndpoint(base, vendorName), ...settings.current };
  return (asset) => ({
    url: deliveryUrl(asset.path, { cachebuster: asset.version, format: URL_FORMATS[asset.contentType] }, credentials),
    thumbnailUrl: deliveryUrl(asset.path, { ...THUMBNAIL, cachebuster: asset.version }, credentials),
  });
}

/**
 * Which published asset holds each output of `jobs` now: one store read for all of them (none unless one has
 * succeeded), then the delivery settings and name of each vendor that has one.
 */
export async function assetRefsOf(
  engine: Engine,
  base: string,
  jobs: Job[],
): Promise<(job: Job, output: JobOutput) => AssetRef | null> {
  const succeeded = jobs.filter((j) => j.state === 'succeeded').map((j) => j.id);
  const assets = succeeded.length === 0 ? [] : await engine.assets.ofJobs(succeeded);
  if (assets.length === 0) return () => null;
  const urls = new Map<string, AssetUrls>();
  for (const vendorId of new Set(assets.map((a) => a.vendorId))) {
    const vendor = await engine.vendors.get(vendorId);
    urls.set(vendorId, assetUrlsOf(base, vendor.name, await engine.delivery.get(vendorId)));
  }
  return (job, output) => {
    const asset = assets.find((a) => a.jobId === job.id && a.blob === output.blob);
    return asset ? { path: asset.path, version: asset.version, url: urls.get(asset.vendorId)!(asset).url } : null;
  };
}
