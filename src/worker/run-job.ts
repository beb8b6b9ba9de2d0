import type { Logger } from 'pino';
import type { BlobWriter } from '../blobs/types.js';
import type { Engine, Job, Outcome } from '../engine/index.js';
import { jobErrors, PixqError } from '../errors.js';
import { parseOptions, raceAbort, throwIfAborted, type Processor, type ProgressUpdate } from '../processors/index.js';

/** Why a running job's signal was aborted; decides how the attempt is recorded. */
export type AbortCause = 'cancel' | 'timeout' | 'shutdown' | 'lost';

export class JobAbort extends Error {
  constructor(readonly kind: AbortCause) {
    super(`job aborted: ${kind}`);
  }
}

export interface RunJobDeps {
  engine: Engine;
  workerId: string;
  blobs: BlobWriter;
  log: Logger;
  loadInput(job: Job, signal: AbortSignal): Promise<Buffer>;
  /** Records a success (batched with others finishing at the same time); false if the lease was lost. */
  succeed(job: Job, outcome: Outcome): Promise<boolean>;
}

const PROGRESS_INTERVAL_MS = 250;

/** The two ends of a job run: its outcome recorded, and its handler's work stopped. */
export interface JobRun {
  /** Settles once the outcome is recorded: at once on cancel or timeout, whatever the work does meanwhile. */
  recorded: Promise<void>;
  /** Settles once the handler has returned: its image work has stopped, and its slot may take another job. */
  stopped: Promise<void>;
}

/**
 * Runs one claimed job. The handler races the abort signal for the record: on cancel or timeout the outcome is
 * recorded at once and a late result is dropped; on shutdown the job goes back to the queue. The handler itself
 * returns only once its work has stopped (see `afterStopping`), which `stopped` reports.
 */
export function runJob(deps: RunJobDeps, processor: Processor, job: Job, controller: AbortController): JobRun {
  const { log } = deps;
  const signal = controller.signal;
  const timer = setTimeout(() => controller.abort(new JobAbort('timeout')), job.timeoutMs);
  const progress = throttledProgress(deps, job);
  log.debug({ jobId: job.id, attempt: job.attempts }, 'job started');
  const work = (async () => {
    const input = processor.needsInput ? await deps.loadInput(job, signal) : undefined;
    throwIfAborted(signal);
    const options = parseOptions(processor, job.options);
    return processor.run({
      input,
      options,
      signal,
      progress: progress.report,
      blobs: deps.blobs,
      log: log.child({ jobId: job.id }),
    });
  })();
  const recorded = (async () => {
    try {
      const outcome = await raceAbort(work, signal);
      await progress.flush();
      const outputs = outcome.outputs.map(({ key, ...output }) => ({ blob: key, ...output }));
      await deps.succeed(job, { outputs, result: outcome.result });
      log.debug({ jobId: job.id, attempt: job.attempts }, 'job finished');
    } catch (err) {
      await recordFailure(deps, job, signal.aborted ? signal.reason : err);
    } finally {
      clearTimeout(timer);
      progress.stop();
    }
  })();
  return { recorded, stopped: work.then(noop, noop) };
}

const noop = () => undefined;

async function recordFailure(deps: RunJobDeps, job: Job, err: unknown) {
  const { engine, workerId, log } = deps;
  const cause = err instanceof JobAbort ? err.kind : undefined;
  if (cause === 'lost') return log.warn({ jobId: job.id }, 'lease lost; another worker may run the job');
  if (cause === 'shutdown') {
    await engine.work.release(workerId, job);
    return log.info({ jobId: job.id }, 'job returned to the queue on shutdown');
  }
  const error =
    cause === 'cancel' ? jobErrors.cancelled() : cause === 'timeout' ? jobErrors.timeout(job.timeoutMs) : err;
  if (!(error instanceof PixqError)) log.error({ jobId: job.id, err: error }, 'job handler failed');
  await engine.work.fail(workerId, job, error);
  log.debug({ jobId: job.id, attempt: job.attempts, code: (error as PixqError).code }, 'job finished');
}

/** Progress at most every 250 ms per job, the latest value always written. */
function throttledProgress(deps: RunJobDeps, job: Job) {
  let pending: ProgressUpdate | undefined;
  let timer: NodeJS.Timeout | undefined;
  let writing = Promise.resolve();
  const write = () => {
    timer = undefined;
    const update = pending;
    pending = undefined;
    // Progress is advisory: a write the store refuses (an outage) is dropped, not left as a rejection that
    // would stop later writes or, from the timer, crash the process.
    if (update)
      writing = writing
        .then(() => deps.engine.work.progress(deps.workerId, job.id, update))
        .then(
          () => undefined,
          () => undefined,
        );
    return writing;
  };
  return {
    report(update: ProgressUpdate) {
      pending = update;
      timer ??= setTimeout(write, PROGRESS_INTERVAL_MS);
    },
    flush() {
      if (timer) clearTimeout(timer);
      return write();
    },
    stop() {
      if (timer) clearTimeout(timer);
      pending = undefined;
    },
  };
}
