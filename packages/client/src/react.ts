import { createContext, createElement, useContext, useEffect, useState, type ReactNode } from 'react';
import type { PixqClient } from './client.js';
import { FINISHED_STATES, type Batch, type Job, type JobEvent, type JobState } from './schemas.js';

/**
 * React hooks over PixqClient: live state of one job or one batch, following events (EventSource with an
 * event token in browsers) and falling back to polling, and closing the stream when the component unmounts
 * or the id changes.
 */
const ClientContext = createContext<PixqClient | undefined>(undefined);

/** Makes `client` the one the hooks below use in this tree. */
export function PixqProvider(props: { client: PixqClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

function useClient(explicit: PixqClient | undefined): PixqClient {
  // Read on every render, whether or not a client is passed: hooks run in the same order each time.
  const provided = useContext(ClientContext);
  const client = explicit ?? provided;
  if (!client)
    throw new Error('the pixq hooks need a client: wrap the tree in <PixqProvider client={...}> or pass { client }');
  return client;
}

export interface JobProgress {
  stage: string | null;
  /** 0..100 */
  percentage: number;
  message: string | null;
}

export interface UseJobResult {
  job: Job | undefined;
  state: JobState | undefined;
  progress: JobProgress;
  isComplete: boolean;
  /** A refusal of the API (PixqApiError), or the finished job's own error (`{code, message}`) if it failed. */
  error: Error | { code: string; message: string } | undefined;
}

interface JobSnapshot {
  job?: Job;
  state?: JobState;
  progress: JobProgress;
  error?: Error;
}

const NO_PROGRESS: JobProgress = { stage: null, percentage: 0, message: null };
const progressOf = (p: Job['progress']): JobProgress => ({ stage: p.stage, percentage: p.percent, message: p.message });

/** The live state of one job (nothing while `id` is empty). */
export function useJob(id: string | null | undefined, opts: { client?: PixqClient } = {}): UseJobResult {
  const client = useClient(opts.client);
  const [snapshot, setSnapshot] = useState<JobSnapshot>({ progress: NO_PROGRESS });
  useEffect(() => {
    setSnapshot({ progress: NO_PROGRESS });
    if (!id) return;
    const controller = new AbortController();
    const update = (next: (s: JobSnapshot) => JobSnapshot) => {
      if (!controller.signal.aborted) setSnapshot(next);
    };
    const fromJob = (job: Job) => update((s) => ({ ...s, job, state: job.state, progress: progressOf(job.progress) }));
    const fromEvent = (e: JobEvent) =>
      update((s) => ({
        ...s,
        state: e.state,
        progress: progressOf(e.progress),
        job: s.job && { ...s.job, state: e.state, progress: e.progress },
      }));
    const fail = (error: unknown) =>
      update((s) => ({ ...s, error: error instanceof Error ? error : new Error(String(error)) }));
    client.job(id).then(fromJob, fail);
    client.wait(id, { signal: controller.signal, onEvent: fromEvent }).then(fromJob, fail);
    return () => controller.abort();
  }, [client, id]);
  const isComplete = snapshot.state !== undefined && FINISHED_STATES.has(snapshot.state);
  return {
    job: snapshot.job,
    state: snapshot.state,
    progress: snapshot.progress,
    isComplete,
    error: snapshot.error ?? (isComplete ? (snapshot.job?.error ?? undefined) : undefined),
  };
}

export interface UseBatchResult {
  batch: Batch | undefined;
  /** Jobs by state: queued, running, succeeded, failed, ... */
  counts: Record<string, number>;
  total: number;
  /** Overall percent, 0..100. */
  percent: number;
  isComplete: boolean;
  error: Error | undefined;
}

/** The live counts and overall percent of one bulk submission (nothing while `batchId` is empty). */
export function useBatch(batchId: string | null | undefined, opts: { client?: PixqClient } = {}): UseBatchResult {
  const client = useClient(opts.client);
  const [state, setState] = useState<{ batch?: Batch; isComplete: boolean; error?: Error }>({ isComplete: false });
  useEffect(() => {
    setState({ isComplete: false });
    if (!batchId) return;
    const controller = new AbortController();
    const update = (next: typeof state) => {
      if (!controller.signal.aborted) setState(next);
    };
    client
      .waitBatch(batchId, { signal: controller.signal, onProgress: (batch) => update({ batch, isComplete: false }) })
      .then(
        (batch) => update({ batch, isComplete: true }),
        (error: unknown) =>
          update({ isComplete: false, error: error instanceof Error ? error : new Error(String(error)) }),
      );
    return () => controller.abort();
  }, [client, batchId]);
  const { batch } = state;
  return {
    batch,
    counts: batch?.counts ?? {},
    total: batch?.total ?? 0,
    percent: batch?.percent ?? 0,
    isComplete: state.isComplete,
    error: state.error,
  };
}
