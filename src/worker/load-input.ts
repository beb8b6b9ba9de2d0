import type { BlobStore } from '../blobs/types.js';
import type { Job } from '../engine/index.js';
import { jobErrors } from '../errors.js';

/** The input bytes of a job: its stored blob. */
export function blobInputLoader(blobs: BlobStore) {
  return async (job: Job): Promise<Buffer> => {
    if (job.inputBlob) return blobs.get(job.inputBlob);
    throw jobErrors.invalidImage('the job has no input image');
  };
}
