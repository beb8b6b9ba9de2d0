import { useEffect, useRef } from 'react';
import { useSession } from './session';

/** State events closer together than this cause one refresh. */
const EVENT_REFRESH_MS = 1000;

/**
 * Calls `refresh` now, after job state events (the caller's live stream, at most once a second) and every
 * `pollMs` regardless: what events do not announce (charts' minute buckets, worker heartbeats) still moves,
 * and a session whose stream is refused still refreshes.
 */
export function useRefresh(refresh: () => void, pollMs: number) {
  const { client } = useSession();
  const latest = useRef(refresh);
  latest.current = refresh;

  useEffect(() => {
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last = 0;
    const run = () => {
      last = Date.now();
      latest.current();
    };
    const soon = () => {
      if (timer === undefined) {
        timer = setTimeout(
          () => {
            timer = undefined;
            run();
          },
          Math.max(0, last + EVENT_REFRESH_MS - Date.now()),
        );
      }
    };
    run();
    const poll = setInterval(run, pollMs);
    void (async () => {
      try {
        for await (const event of client.events({}, { signal: stop.signal })) if (event.kind === 'state') soon();
      } catch {
        // The stream was refused or broke for good: the poll above keeps the page current.
      }
    })();
    return () => {
      stop.abort();
      clearInterval(poll);
      clearTimeout(timer);
    };
  }, [client, pollMs]);
}
