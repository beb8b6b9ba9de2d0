import type { FastifyRequest } from 'fastify';
import { assetRefsOf, assetUrlsOf } from '../delivery/urls.js';
import type { Job } from '../engine/index.js';
import type { ApiDeps } from './deps.js';
import type { AssetRefs } from './views.js';

/**
 * Delivery URLs in the API's answers: on PIXQ_DELIVERY_URL (a CDN in front of pixq) or PIXQ_PUBLIC_URL when
 * set, else on the origin the request came to, so every URL handed out is absolute and can be stored as it is.
 */
export function deliveryBase(deps: Pick<ApiDeps, 'config'>, request: FastifyRequest): string {
  return deps.config.delivery.baseUrl ?? `${request.protocol}://${request.host}`;
}

/** The URL maker for the calling vendor's assets. */
export async function assetUrls(deps: ApiDeps, request: FastifyRequest, vendor: { id: string; name: string }) {
  return assetUrlsOf(deliveryBase(deps, request), vendor.name, await deps.engine.delivery.get(vendor.id));
}

/** Which asset holds each output of `jobs` now (see assetRefsOf). */
export function jobAssetRefs(deps: ApiDeps, request: FastifyRequest, jobs: Job[]): Promise<AssetRefs> {
  return assetRefsOf(deps.engine, deliveryBase(deps, request), jobs);
}
