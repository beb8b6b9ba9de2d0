import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Job } from '../engine/index.js';
import { PixqError } from '../errors.js';
import { vendorOf } from './auth.js';
import type { ApiDeps } from './deps.js';
import { chargeRemovals, toJobSpec } from './intake.js';
import type { JobSubmission } from './schemas.js';

/**
 * The one way a request becomes jobs, for /v1 and the compatibility APIs alike: each submission checked into a
 * job spec (type, options, input the vendor may use, SSRF rules for URLs), the background-removal budget
 * charged for all of them, then one transaction. With a `batchId` the jobs form a batch, and a refusal names
 * the submission it is about (`jobs[3]: ...`).
 */
export async function submitJobs(
  deps: ApiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  submissions: JobSubmission[],
  opts: { batchId?: string; idempotencyKey?: string } = {},
): Promise<Job[]> {
  const vendor = vendorOf(request);
  const maxJobs = deps.config.maxBulkFiles;
  if (submissions.length > maxJobs) {
    throw new PixqError('payload_too_large', `at most ${maxJobs} jobs per bulk request, got ${submissions.length}`, {
      status: 413,
    });
  }
  const specs = [];
  for (const [index, body] of submissions.entries()) {
    try {
      specs.push(await toJobSpec(deps, vendor.id, body, opts.idempotencyKey));
    } catch (err) {
      if (!opts.batchId || !(err instanceof PixqError)) throw err;
      throw new PixqError(err.code, `jobs[${index}]: ${err.message}`, { status: err.status, details: err.details });
    }
  }
  await chargeRemovals(deps.limiter, request, reply, specs);
  const { jobs } = await deps.engine.jobs.enqueue(vendor.id, specs, opts.batchId);
  return jobs;
}
