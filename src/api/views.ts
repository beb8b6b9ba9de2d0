import { signBlobUrl } from '../blobs/index.js';
import type { ApiKeyInfo, Job, JobOutput, Upload, Vendor } from '../engine/index.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface Signer {
  secret: Buffer;
  ttlMs: number;
}

export function outputUrl(signer: Signer, vendorId: string, output: JobOutput): string {
  return signBlobUrl(
    { key: output.blob, vendorId, contentType: output.contentType, expiresAt: Date.now() + signer.ttlMs },
    signer.secret,
  );
}

/** A job as callers see it: ISO times, signed output URLs, no lease or internal fields. */
export function jobView(job: Job & { outputs?: JobOutput[] }, signer: Signer) {
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
      contentType: o.contentType,
      width: o.width,
      height: o.height,
      bytes: o.bytes,
    })),
    error: job.error && { code: job.error.code, message: job.error.message },
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
