import type { FastifyReply, FastifyRequest } from 'fastify';
import { FINISHED_STATES, type Engine, type Job, type JobOutput, type Vendor } from '../../engine/index.js';
import { PixqError, validationFailed } from '../../errors.js';
import { DEFAULT_MODEL, type ModelName } from '../../processors/models/catalog.js';
import { vendorOf } from '../auth.js';
import type { ApiDeps } from '../deps.js';
import type { Budget } from '../rate-limit.js';

/**
 * What the compatibility APIs share. Their routes act as the key's vendor (or, keyless, as
 * PIXQ_COMPAT_ANONYMOUS_VENDOR); the old systems' `vendorId` fields are claims checked against it.
 */
export const compatRoute = (...budgets: Budget[]) => ({ access: 'vendor' as const, keylessVendor: true, budgets });

/** A body's `vendorId` must name the caller's own vendor (by id or name); anything else is 403. */
export function checkVendorClaim(vendor: Vendor, claimed: unknown): void {
  if (claimed === undefined || claimed === null) return;
  if (String(claimed) === vendor.id || String(claimed) === vendor.name) return;
  throw new PixqError(
    'forbidden',
    'vendorId names another vendor than the API key belongs to; the vendor always comes from the key',
    { status: 403 },
  );
}

/**
 * rembg's model names, as the old clients send them, mapped to the models pixq ships (offline, no download):
 * the general-purpose ones to pixq's default (isnet-int8), the light ones to isnet-small. pixq's own names pass through.
 * To run rembg's exact weights, submit through /v1 with that model (see the README).
 */
const OLD_MODELS: Record<string, ModelName> = {
  u2net: DEFAULT_MODEL,
  u2netp: 'isnet-small',
  u2net_human_seg: DEFAULT_MODEL,
  u2net_cloth_seg: DEFAULT_MODEL,
  silueta: 'isnet-small',
  'isnet-general-use': DEFAULT_MODEL,
  'isnet-anime': DEFAULT_MODEL,
  'birefnet-general': DEFAULT_MODEL,
  'birefnet-general-lite': DEFAULT_MODEL,
  'isnet-medium': 'isnet-medium',
  'isnet-small': 'isnet-small',
};

/** The pixq model for an old request's model name; none named gives pixq's default. */
export function pixqModel(name: string | undefined): ModelName {
  if (name === undefined || name === '') return DEFAULT_MODEL;
  const model = OLD_MODELS[name];
  if (!model) throw validationFailed(`model "${name}" is not known; use one of ${Object.keys(OLD_MODELS).join(', ')}`);
  return model;
}

/** The metadata a compatibility submission stores: the caller's own fields, and which API it came through. */
export function compatMetadata(via: string, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...fields, via };
}

/** The caller's fields back, without pixq's own marker. */
export function callerFields(job: Job): Record<string, unknown> {
  const { via: _via, ...rest } = job.metadata ?? {};
  return rest;
}

/**
 * For the synchronous compatibility routes (rembg's /api/remove, remove.bg's /v1.0/removebg): the caller's job
 * once finished. Past PIXQ_SYNC_WAIT_MS the answer is 504 `sync_wait_exceeded` with the job's id and a
 * `Location` to follow it on /v1; the job goes on.
 */
export async function finishedJob(deps: ApiDeps, request: FastifyRequest, reply: FastifyReply, id: string) {
  const { engine, config } = deps;
  // Nothing crosses the connection while the job runs: the idle timeout (PIXQ_BODY_IDLE_TIMEOUT_MS) would end
  // the wait with a 408 long before PIXQ_SYNC_WAIT_MS. The socket gets the whole wait, then its own limit back.
  const socket = request.raw.socket;
  socket.setTimeout(config.syncWaitMs + config.bodyIdleTimeoutMs);
  const job = await finished(engine, id, vendorOf(request).id, config.syncWaitMs, config.pollMs).finally(() =>
    socket.setTimeout(config.bodyIdleTimeoutMs),
  );
  if (job) return job;
  reply.header('location', `/v1/jobs/${id}`);
  throw new PixqError(
    'sync_wait_exceeded',
    `the job did not finish within ${config.syncWaitMs} ms; it goes on: follow /v1/jobs/${id}`,
    { status: 504, details: { jobId: id } },
  );
}

/**
 * The job once finished, or undefined after `waitMs`. Woken by the job's own events; a read every `pollMs`
 * covers an event this process did not see.
 */
async function finished(engine: Engine, id: string, vendorId: string, waitMs: number, pollMs: number) {
  type Finished = (Job & { outputs: JobOutput[] }) | undefined;
  return new Promise<Finished>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      off();
      clearInterval(poll);
      clearTimeout(deadline);
      outcome();
    };
    const check = () =>
      engine.jobs.get(id, vendorId).then(
        (job) => FINISHED_STATES.includes(job.state) && settle(() => resolve(job)),
        (err: unknown) => settle(() => reject(err)),
      );
    const off = engine.bus.onEvent((e) => {
      if (e.jobId === id && FINISHED_STATES.includes(e.state)) void check();
    });
    const poll = setInterval(check, pollMs);
    const deadline = setTimeout(() => settle(() => resolve(undefined)), waitMs);
    void check();
  });
}
