import { useCallback, useEffect, useRef, useState } from 'react';
import type { EventsFilter, Job, JobEvent, PixqClient } from '@pixq/client';

/** A job moved on by one of its events: what an event carries, without a read. */
export function withEvent(job: Job, event: JobEvent): Job {
  return { ...job, state: event.state, attempts: event.attempts, progress: event.progress, error: event.error };
}

/**
 * Calls `onEvent` for every live event matching `filter` while the component is mounted. One stream for the
 * whole page: a browser allows six connections per origin, so one stream per job would stall at the seventh.
 */
export function useJobEvents(client: PixqClient, filter: EventsFilter, onEvent: (event: JobEvent) => void) {
  const latest = useRef(onEvent);
  latest.current = onEvent;
  const { jobId, batchId } = filter;
  useEffect(() => {
    const controller = new AbortController();
    void (async () => {
      try {
        for await (const event of client.events({ jobId, batchId }, { signal: controller.signal }))
          latest.current(event);
      } catch (error) {
        if (!controller.signal.aborted) console.error('live updates stopped', error);
      }
    })();
    return () => controller.abort();
  }, [client, jobId, batchId]);
}

/**
 * Jobs kept current from reads and live events. An event that arrives while a read is under way may be
 * newer than the read's answer, so it is applied on top of it (a later event corrects it if it was not).
 */
export function useLiveJobs(
  client: PixqClient,
  filter: EventsFilter = {},
  onEvent?: (event: JobEvent, known: boolean) => void,
) {
  const [jobs, setJobs] = useState<ReadonlyMap<string, Job>>(new Map());
  const lastEvent = useRef(new Map<string, JobEvent>());
  const known = useRef<ReadonlyMap<string, Job>>(jobs);
  known.current = jobs;

  useJobEvents(client, filter, (event) => {
    lastEvent.current.set(event.jobId, event);
    setJobs((current) => {
      const job = current.get(event.jobId);
      return job ? new Map(current).set(job.id, withEvent(job, event)) : current;
    });
    onEvent?.(event, known.current.has(event.jobId));
  });

  /** Reads jobs (a page, one job) into the map; `replace` drops the ones this read did not return. */
  const read = useCallback(
    async <T>(reader: () => Promise<T>, jobsOf: (answer: T) => Job[], replace = false): Promise<T> => {
      const before = new Map(lastEvent.current);
      const answer = await reader();
      setJobs((current) => {
        const next = new Map(replace ? [] : current);
        for (const job of jobsOf(answer)) {
          const event = lastEvent.current.get(job.id);
          next.set(job.id, event && event !== before.get(job.id) ? withEvent(job, event) : job);
        }
        return next;
      });
      return answer;
    },
    [],
  );

  return { jobs, read };
}
