import os from 'node:os';
import type { Logger } from 'pino';
import type { BlobWriter } from '../blobs/types.js';
import type { Engine, Job, Outcome } from '../engine/index.js';
import { storeFault } from '../errors.js';
import { newId } from '../ids.js';
import type { Processor } from '../processors/index.js';
import { JobAbort, runJob, type RunJobDeps } from './run-job.js';

export interface WorkerOptions {
  engine: Engine;
  processors: Map<string, Processor>;
  /** Slots per job type; types without a processor are ignored. */
  concurrency: Record<string, number>;
  blobs: BlobWriter;
  log: Logger;
  loadInput: RunJobDeps['loadInput'];
  /** Fallback poll for new work when no wake-up arrives (other processes on SQLite). */
  pollMs: number;
  shutdownGraceMs: number;
}

interface Running {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
}

/** A slot taken by a job, from its claim until its outcome is recorded and its work has stopped. */
interface Taken {
  type: string;
}

const CANCEL_CHECK_MS = 500;
const CONTENDED_RETRY_MS = 20;
const MAX_SUCCESSES_PER_FLUSH = 200;

interface PendingSuccess {
  item: Outcome & { job: Job };
  resolve(recorded: boolean): void;
  reject(err: unknown): void;
}

/**
 * The worker runtime: keeps its slots busy with claimed jobs, renews their leases, passes on cancel
 * requests, and on stop lets running jobs finish within a grace period before returning the rest.
 */
export class Worker {
  readonly id = `${os.hostname()}-${process.pid}-${newId().slice(-6)}`;
  private readonly slots: Record<string, number>;
  /** Jobs whose outcome is not recorded yet: their leases are renewed and cancels passed on. */
  private readonly running = new Map<string, Running>();
  /**
   * Slots in use. A cancelled or timed-out job's outcome is recorded at once, but its slot stays taken until its
   * handler has returned: image work cannot be interrupted, and work started in a slot it had left would pile
   * up behind it in libuv's pool, beyond the slots.
   */
  private readonly taken = new Set<Taken>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private readonly startedAt = Date.now();
  /** Successes waiting for the next flush, which records them and claims for their slots in one commit. */
  private readonly successes: PendingSuccess[] = [];
  private claiming = false;
  private flushScheduled = false;
  private claimAgain = false;
  private stopping = false;

  /** What every job run shares; successes join the next flush. */
  private readonly runDeps: RunJobDeps;

  constructor(private readonly opts: WorkerOptions) {
    this.runDeps = {
      ...opts,
      workerId: this.id,
      succeed: (job, outcome) =>
        new Promise<boolean>((resolve, reject) => {
          this.successes.push({ item: { job, ...outcome }, resolve, reject });
          this.claimSoon();
        }),
    };
    this.slots = Object.fromEntries(
      Object.entries(opts.concurrency).filter(([type, n]) => n > 0 && opts.processors.has(type)),
    );
  }

  private get log() {
    return this.opts.log;
  }

  async start(): Promise<void> {
    const { engine } = this.opts;
    await this.report();
    this.unsubscribe.push(
      engine.bus.onWake((types) => types.some((t) => t in this.slots) && this.claimSoon()),
      engine.bus.onCancel((jobId) => this.abort(jobId, 'cancel')),
      // Wake-ups sent while the bus was down are lost; what became ready meanwhile is claimed now.
      engine.bus.onReconnect(() => this.claimSoon()),
    );
    const leaseMs = engine.options.leaseMs;
    this.every(Math.max(250, Math.floor(leaseMs / 3)), () => this.heartbeat());
    this.every(CANCEL_CHECK_MS, () => this.checkCancels());
    this.every(this.opts.pollMs, () => this.claimSoon());
    this.log.info({ workerId: this.id, slots: this.slots }, 'worker started');
    this.claimSoon();
  }

  /** Stops claiming, waits up to the grace period for running jobs, then returns the rest to the queue. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const off of this.unsubscribe) off();
    await this.report().catch(() => undefined);
    const drained = await Promise.race([
      Promise.all([...this.running.values()].map((r) => r.done)).then(() => true),
      delay(this.opts.shutdownGraceMs).then(() => false),
    ]);
    if (!drained) {
      for (const jobId of this.running.keys()) this.abort(jobId, 'shutdown');
      // Successes still waiting for the store (an outage) are given up: their jobs come back through leases.
      for (const pending of this.successes.splice(0))
        pending.reject(new Error('the worker stopped before the store took the outcome'));
      await Promise.all([...this.running.values()].map((r) => r.done));
    }
    for (const timer of this.timers) clearInterval(timer);
    await this.opts.engine.registry.removeWorker(this.id).catch(() => undefined);
    this.log.info({ workerId: this.id }, 'worker stopped');
  }

  /** Free slots per type, counting the jobs whose success is about to be recorded as done. */
  private freeSlots(finishing: Job[]): Record<string, number> {
    const busy: Record<string, number> = {};
    for (const { type } of this.taken) busy[type] = (busy[type] ?? 0) + 1;
    for (const job of finishing) busy[job.type]--;
    return Object.fromEntries(Object.entries(this.slots).map(([t, n]) => [t, n - (busy[t] ?? 0)]));
  }

  /**
   * Flushes on the next turn of the event loop, or right after the flush in flight: flushes never overlap
   * within one worker, so slots are never claimed twice. Waiting for the next turn lets every job finishing
   * in this one join the same flush, so one commit records them all and refills all their slots.
   * A stopping worker still records successes but claims nothing.
   */
  private claimSoon() {
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush() {
    this.claiming = true;
    this.claimAgain = false;
    this.claim()
      .catch((err) => this.logFailure('claim failed', err))
      .finally(() => {
        this.claiming = false;
        if (this.claimAgain) this.claimSoon();
      });
  }

  private async claim() {
    const successes = this.successes.splice(0, MAX_SUCCESSES_PER_FLUSH);
    const free = this.stopping ? {} : this.freeSlots(successes.map((s) => s.item.job));
    if (successes.length === 0 && !Object.values(free).some((n) => n > 0)) return;
    let outcome;
    try {
      outcome = await this.opts.engine.work.finishAndClaim(
        this.id,
        successes.map((s) => s.item),
        free,
      );
    } catch (err) {
      // The store is down or full: nothing was recorded. The successes wait for the next flush (the poll, or
      // the bus reconnecting), fenced by the lease like any other, instead of failing jobs that succeeded.
      if (storeFault(err)) this.successes.unshift(...successes);
      else successes.forEach((s) => s.reject(err));
      throw err;
    }
    successes.forEach((s, i) => s.resolve(outcome.recorded[i]));
    const { jobs, contended } = outcome.claimed;
    for (const job of jobs) this.launch(job);
    const full = jobs.length > 0 && jobs.length === this.opts.engine.options.claimBatch;
    if (full || this.successes.length > 0) this.claimAgain = true;
    else if (contended) setTimeout(() => this.claimSoon(), CONTENDED_RETRY_MS).unref();
  }

  private launch(job: Job) {
    const controller = new AbortController();
    const slot: Taken = { type: job.type };
    this.taken.add(slot);
    const run = runJob(this.runDeps, this.opts.processors.get(job.type)!, job, controller);
    const done = run.recorded
      .catch((err) => this.log.error({ err, jobId: job.id }, 'recording the job outcome failed'))
      .finally(() => {
        if (this.running.get(job.id)?.done === done) this.running.delete(job.id);
      });
    this.running.set(job.id, { job, controller, done });
    void Promise.all([done, run.stopped]).then(() => {
      this.taken.delete(slot);
      this.claimSoon();
    });
  }

  private abort(jobId: string, cause: JobAbort['kind']) {
    this.running.get(jobId)?.controller.abort(new JobAbort(cause));
  }

  private async heartbeat() {
    const ids = [...this.running.keys()];
    const { lost, cancelRequested } = await this.opts.engine.work.heartbeat(this.id, ids);
    for (const id of lost) this.abort(id, 'lost');
    for (const id of cancelRequested) this.abort(id, 'cancel');
    await this.report();
  }

  /** Cancel requests from other processes on SQLite arrive by this poll (PostgreSQL also notifies). */
  private async checkCancels() {
    if (this.running.size === 0) return;
    const ids = await this.opts.engine.work.cancelRequested(this.id, [...this.running.keys()]);
    for (const id of ids) this.abort(id, 'cancel');
  }

  private report() {
    return this.opts.engine.registry.reportWorker({
      id: this.id,
      host: os.hostname(),
      pid: process.pid,
      startedAt: this.startedAt,
      heartbeatAt: Date.now(),
      running: this.running.size,
      slots: this.slots,
      stopping: this.stopping,
    });
  }

  /** A store outage is expected and retried by the next round: a short warning, not an error with a stack. */
  private logFailure(what: string, err: unknown) {
    const fault = storeFault(err);
    if (fault) this.log.warn({ code: fault.code, cause: (err as Error).message }, `${what}: store outage; retrying`);
    else this.log.error({ err }, what);
  }

  private every(ms: number, task: () => Promise<void> | void) {
    const timer = setInterval(() => {
      Promise.resolve(task()).catch((err) => this.logFailure('worker task failed', err));
    }, ms);
    // Referenced on purpose: a running worker is what keeps a `pixq worker` process alive.
    this.timers.push(timer);
  }
}

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
