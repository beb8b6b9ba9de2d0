import { useCallback, useEffect, useState } from 'react';
import { FINISHED_STATES, PixqApiError, type JobEvent, type PixqClient } from '@pixq/client';
import { Link } from 'wouter';
import { useSession } from '../session';
import { useLiveJobs } from '../components/live-jobs';
import { errorText } from '../errors';
import { Table } from '../table';
import { attemptsOf, failureOf, mergeEvents } from '../components/attempts';
import { JsonBlock, ProgressBar, StateWord, canCancel, canRetry, outputHref, outputName } from '../components/JobBits';

/** Every stored event of the job, oldest first, a page at a time. */
async function storedEvents(client: PixqClient, id: string): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for (let afterId: number | null = 0; afterId !== null;) {
    const page = await client.jobEvents(id, { afterId, limit: 500 });
    events.push(...page.events);
    afterId = page.nextAfterId;
  }
  return events;
}

/** The job's input image as an object URL, or why there is none (a job given by URL keeps no copy). */
function useInputImage(client: PixqClient, id: string): { url?: string; missing?: string } {
  const [input, setInput] = useState<{ url?: string; missing?: string }>({});
  useEffect(() => {
    let url: string | undefined;
    let current = true;
    setInput({});
    client.jobInput(id).then(
      (blob) => {
        url = URL.createObjectURL(blob);
        if (current) setInput({ url });
        else URL.revokeObjectURL(url);
      },
      (e: unknown) =>
        current &&
        setInput({
          missing:
            e instanceof PixqApiError && e.status === 404
              ? 'No input image is kept for this job (it was given by URL, or has none).'
              : errorText(e),
        }),
    );
    return () => {
      current = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [client, id]);
  return input;
}

/**
 * One job: its input and output images side by side on a checkerboard (transparency shows), progress, its
 * options, result and metadata, and its attempts and timeline from the stored events, then the live ones.
 */
export function JobDetailPage({ id }: { id: string }) {
  const { client } = useSession();
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState<string>();
  const input = useInputImage(client, id);
  const { jobs, read } = useLiveJobs(client, { jobId: id }, (event) => {
    setEvents((seen) => mergeEvents(seen, [event]));
    // Events carry no outputs or result: read the finished job for them.
    if (event.kind === 'state' && FINISHED_STATES.has(event.state)) readJob();
  });
  const readJob = useCallback(
    () =>
      read(
        () => client.job(id),
        (job) => [job],
      ).then(
        () => setError(undefined),
        (e: unknown) => setError(errorText(e)),
      ),
    [client, id, read],
  );
  useEffect(() => {
    setEvents([]);
    void readJob();
    // Live events that arrive meanwhile are merged by id, so none is lost or shown twice.
    storedEvents(client, id).then(
      (stored) => setEvents((seen) => mergeEvents(stored, seen)),
      (e: unknown) => setError(errorText(e)),
    );
  }, [client, id, readJob]);
  const act = (action: () => Promise<unknown>) => action().catch((e: unknown) => setError(errorText(e)));
  const job = jobs.get(id);

  if (!job)
    return (
      <section className="job-detail">
        <h1>Job {id}</h1>
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : (
          <p>Loading…</p>
        )}
      </section>
    );
  const attempts = attemptsOf(events);

  return (
    <section className="job-detail">
      <p>
        <Link href="/jobs">← Jobs</Link>
      </p>
      <h1>Job {job.id}</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="row-actions">
        {canCancel(job) && (
          <button type="button" className="danger" onClick={() => act(() => client.cancel(id))}>
            Cancel
          </button>
        )}
        {canRetry(job) && (
          <button
            type="button"
            className="secondary"
            onClick={() =>
              act(() =>
                read(
                  () => client.retry(id),
                  (j) => [j],
                ),
              )
            }
          >
            Retry
          </button>
        )}
      </div>
      <dl className="job-summary">
        <dt>State</dt>
        <dd>
          <StateWord state={job.state} />
        </dd>
        <dt>Type</dt>
        <dd>{job.type}</dd>
        <dt>Template</dt>
        <dd>{job.template ?? '—'}</dd>
        <dt>Progress</dt>
        <dd>
          <ProgressBar progress={job.progress} />
          {job.progress.message && ` ${job.progress.message}`}
        </dd>
        <dt>Attempts</dt>
        <dd>
          {job.attempts} of {job.maxAttempts}
        </dd>
        <dt>Priority</dt>
        <dd>{job.priority}</dd>
        <dt>Created</dt>
        <dd>{new Date(job.createdAt).toLocaleString()}</dd>
        <dt>Started</dt>
        <dd>{job.startedAt ? new Date(job.startedAt).toLocaleString() : '—'}</dd>
        <dt>Finished</dt>
        <dd>{job.finishedAt ? new Date(job.finishedAt).toLocaleString() : '—'}</dd>
        <dt>Batch</dt>
        <dd>
          {job.batchId ? <Link href={`/jobs?batch=${encodeURIComponent(job.batchId)}`}>{job.batchId}</Link> : '—'}
        </dd>
      </dl>

      <h2>Images</h2>
      <div className="job-images">
        {input.url ? (
          <figure className="job-image">
            <figcaption>Input</figcaption>
            <div className="checkerboard">
              <img src={input.url} alt="input" />
            </div>
          </figure>
        ) : (
          <figure className="job-image input-missing">
            <figcaption>Input</figcaption>
            <p>{input.missing ?? 'Loading…'}</p>
          </figure>
        )}
        {job.outputs.map((output, index) => (
          <figure key={output.url} className="job-image">
            <figcaption>
              Output {job.outputs.length > 1 ? index + 1 : ''} ({output.width}×{output.height}, {output.contentType},{' '}
              {output.bytes} bytes)
            </figcaption>
            <div className="checkerboard">
              <img src={outputHref(client.baseUrl, output)} alt={`output ${index + 1}`} />
            </div>
            <a
              href={outputHref(client.baseUrl, output)}
              download={outputName(`${job.id}-${index + 1}`, output.contentType)}
            >
              Download
            </a>
          </figure>
        ))}
        {job.outputs.length === 0 && (
          <p className="empty">{job.state === 'succeeded' ? 'This job wrote no image.' : 'No output yet.'}</p>
        )}
      </div>

      <h2>Attempts</h2>
      {attempts.length > 0 ? (
        <Table label="Attempts" columns={['Attempt', 'Started', 'Ended', 'Outcome', 'Error code', 'Message']}>
          {attempts.map((a) => (
            <tr key={a.startedAt + ':' + a.number} data-attempt={a.number}>
              <td>{a.number}</td>
              <td>{new Date(a.startedAt).toLocaleTimeString()}</td>
              <td>{a.endedAt ? new Date(a.endedAt).toLocaleTimeString() : '—'}</td>
              <td>{a.endState ?? 'running'}</td>
              <td>{a.error?.code ?? '—'}</td>
              <td>{a.error?.message ?? ''}</td>
            </tr>
          ))}
        </Table>
      ) : (
        <p className="empty">No attempt has started.</p>
      )}
      {job.error && !attempts.some((a) => a.error) && (
        <p className="error">
          Last error: {job.error.code}: {job.error.message}
        </p>
      )}

      <h2>Timeline</h2>
      <ol className="timeline">
        {events.map((e) => (
          <li key={e.id} data-kind={e.kind}>
            <time>{new Date(e.at).toLocaleTimeString()}</time>{' '}
            {e.kind === 'state' ? e.state : `${Math.round(e.progress.percent)}%`}
            {e.progress.stage && ` · ${e.progress.stage}`}
            {e.progress.message && ` · ${e.progress.message}`}
            {failureOf(e) && ` · ${failureOf(e)!.code}`}
          </li>
        ))}
        {events.length === 0 && (
          <li>
            <time>{new Date(job.createdAt).toLocaleTimeString()}</time> created (its events are kept a day)
          </li>
        )}
      </ol>

      <h2>Options</h2>
      <JsonBlock value={job.options} />
      <h2>Result</h2>
      <JsonBlock value={job.result} />
      <h2>Metadata</h2>
      <JsonBlock value={job.metadata} />
    </section>
  );
}
