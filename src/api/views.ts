import type { AssetRef } from '@pixq/client/schemas';
import { signBlobUrl } from '../blobs/index.js';
import { THUMBNAIL_SIDE } from '../delivery/urls.js';
import type { ApiKeyInfo, Asset, Job, JobOutput, Upload, Vendor } from '../engine/index.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface Signer {
  secret: Buffer;
  ttlMs: number;
}

export function outputUrl(signer: Signer, vendorId: string, output: JobOutput, thumbnail?: number): string {
  return signBlobUrl(
    { key: output.blob, vendorId, contentType: output.contentType, expiresAt: Date.now() + signer.ttlMs, thumbnail },
    signer.secret,
  );
}

/** The asset holding a job's output now, if any (see src/api/asset-links.ts). */
export type AssetRefs = (job: Job, output: JobOutput) => AssetRef | null;
export const NO_ASSETS: AssetRefs = () => null;

/**
 * A job as callers see it: ISO times, signed output URLs and the published ones' assets, no lease or internal
 * fields.
 */
export function jobView(job: Job & { outputs?: JobOutput[] }, signer: Signer, assets: AssetRefs = NO_ASSETS) {
  return {
    id: job.id,
    type: job.type,
    state: job.state,
    priority: job.priority,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    progress: job.progress,
    createdAt: iso(job.createdAt)!,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    batchId: job.batchId,
    options: job.options,
    metadata: job.metadata,
    webhookUrl: job.webhookUrl,
    template: job.template,
    result: job.result,
    outputs: (job.outputs ?? []).map((o) => ({
      url: outputUrl(signer, job.vendorId, o),
      thumbnailUrl: outputUrl(signer, job.vendorId, o, THUMBNAIL_SIDE),
      contentType: o.contentType,
      width: o.width,
      height: o.height,
      bytes: o.bytes,
      asset: assets(job, o),
    })),
    error: job.error && { code: job.error.code, message: job.error.message },
    publish: job.publishPath === null ? null : { path: job.publishPath, error: job.publishError },
  };
}

/** An asset as its vendor sees it, with its delivery URLs. */
export function assetView(asset: Asset, urls: { url: string; thumbnailUrl: string }) {
  return {
    path: asset.path,
    contentType: asset.contentType,
    width: asset.width,
    height: asset.height,
    bytes: asset.bytes,
    version: asset.version,
    jobId: asset.jobId,
    createdAt: iso(asset.createdAt)!,
    updatedAt: iso(asset.updatedAt)!,
    ...urls,
  };
}

export function vendorView(v: Vendor) {
  return { ...v, createdAt: iso(v.createdAt)! };
}

export function uploadView(u: Upload) {
  return {
    id: u.id,
    contentType: u.contentType,
    width: u.width,
    height: u.height,
    bytes: u.bytes,
    createdAt: iso(u.createdAt)!,
  };
}

export function apiKeyView(k: ApiKeyInfo) {
  return { id: k.id, prefix: k.prefix, createdAt: iso(k.createdAt)!, revokedAt: iso(k.revokedAt) };
}
