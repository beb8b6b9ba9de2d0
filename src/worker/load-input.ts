import type { BlobStore } from '../blobs/types.js';
import type { Config } from '../config.js';
import type { Job } from '../engine/index.js';
import { jobErrors } from '../errors.js';
import { downloadImage, sniffImage } from '../intake/index.js';

/**
 * The input bytes of a job: its stored blob, or its URL downloaded under the same SSRF, size and time rules
 * as at submit time, and checked by content like an upload.
 */
export function inputLoader(
  blobs: BlobStore,
  config: Pick<Config, 'maxUploadBytes' | 'urlTimeoutMs' | 'urlAllowlist' | 'maxPixels'>,
) {
  return async (job: Job, signal: AbortSignal): Promise<Buffer> => {
    if (job.inputBlob) return blobs.get(job.inputBlob);
    if (!job.inputUrl) throw jobErrors.invalidImage('the job has no input image');
    const { bytes } = await downloadImage(job.inputUrl, {
      maxBytes: config.maxUploadBytes,
      timeoutMs: config.urlTimeoutMs,
      allowlist: config.urlAllowlist,
      signal,
    });
    await sniffImage(bytes, config.maxPixels);
    return bytes;
  };
}
