// A page for the browser test: renders useJob and useBatch for the ids in its URL, and records every state.
import { PixqClient } from '@pixq/client';
import { PixqProvider, useBatch, useJob } from '@pixq/client/react';
import { useState } from 'react';
import { createRoot } from 'react-dom/client';

const params = new URLSearchParams(location.search);
const client = new PixqClient({ baseUrl: params.get('api')!, apiKey: params.get('key')! });
const seen: string[] = ((window as unknown as { seenStates: string[] }).seenStates = []);

function Watch() {
  const job = useJob(params.get('job'));
  const batch = useBatch(params.get('batch'));
  if (job.state && seen.at(-1) !== job.state) seen.push(job.state);
  const view = {
    state: job.state,
    progress: job.progress,
    isComplete: job.isComplete,
    error: job.error ?? null,
    outputs: job.job?.outputs.length,
  };
  return (
    <>
      <pre id="job">{JSON.stringify(view)}</pre>
      <pre id="batch">
        {JSON.stringify({
          counts: batch.counts,
          total: batch.total,
          percent: batch.percent,
          isComplete: batch.isComplete,
        })}
      </pre>
    </>
  );
}

function App() {
  const [mounted, setMounted] = useState(true);
  return (
    <PixqProvider client={client}>
      <button id="unmount" onClick={() => setMounted(false)}>
        unmount
      </button>
      {mounted && <Watch />}
    </PixqProvider>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
