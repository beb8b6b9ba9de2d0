import { useCallback, useEffect, useState } from 'react';
import { FINISHED_STATES, type JobEvent } from '@pixq/client';
import { Link } from 'wouter';
import { useSession } from '../session';
import { useLiveJobs } from '../components/live-jobs';
import { errorText } from '../errors';
import { Table } from '../table';
import { JsonBlock, ProgressBar, StateWord, canCancel, canRetry, outputHref, outputName } from '../components/JobBits';

/**
 * One job: its output images on a checkerboard (transparency shows), progress, attempts, result and
 * metadata, and the events seen while the page is open. The job view exposes neither the input image nor the
 * options, so neither is shown.
 */
export function JobDetailPage({ id }: { id: string }) {
  const { client } = useSession();
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [error, setError] = useState<string>();
  const { jobs, read } = useLiveJobs(client, { jobId: id }, (event) => {
    setEvents((seen) => [...seen, event]);
    // Events carry no outputs or result: read the finished job for them.
    if (event.kind === 'state' && FINISHED_STATES.has(event.state)) readJob();
  });
  const readJob = useCallback(
    () => read(() => client.job(id), (job) => [job]).then(() => setError(undefined), (e: unknown) => setError(errorText(e))),
    [client, id, read],
  );
  useEffect(() => {
    setEvents([]);
    void readJob();
  }, [readJob]);
  const act = (action: () => Promise<unknown>) => action().catch((e: unknown) => setError(errorText(e)));
  const job = jobs.get(id);

  if (!job) return <section className="job-detail"><h1>Job {id}</h1>{error ? <p className="error" role="alert">{error}</p> : <p>Loading…</p>}</section>;
  const failures = events.filter((e) => e.kind === 'state' && e.error);

  return (
    <section className="job-detail">
      <p><Link href="/jobs">← Jobs</Link></p>
      <h1>Job {job.id}</h1>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="row-actions">
        {canCancel(job) && <button type="button" className="danger" onClick={() => act(() => client.cancel(id))}>Cancel</button>}
        {canRetry(job) && <button type="button" className="secondary" onClick={() => act(() => read(() => client.retry(id), (j) => [j]))}>Retry</button>}
      </div>
      <dl className="job-summary">
        <dt>State</dt><dd><StateWord state={job.state} /></dd>
        <dt>Type</dt><dd>{job.type}</dd>
        <dt>Template</dt><dd>{job.template ?? '—'}</dd>
        <dt>Progress</dt><dd><ProgressBar progress={job.progress} />{job.progress.message && ` ${job.progress.message}`}</dd>
        <dt>Attempts</dt><dd>{job.attempts} of {job.maxAttempts}</dd>
        <dt>Priority</dt><dd>{job.priority}</dd>
        <dt>Created</dt><dd>{new Date(job.createdAt).toLocaleString()}</dd>
        <dt>Started</dt><dd>{job.startedAt ? new Date(job.startedAt).toLocaleString() : '—'}</dd>
        <dt>Finished</dt><dd>{job.finishedAt ? new Date(job.finishedAt).toLocaleString() : '—'}</dd>
        <dt>Batch</dt><dd>{job.batchId ? <Link href={`/jobs?batch=${encodeURIComponent(job.batchId)}`}>{job.batchId}</Link> : '—'}</dd>
      </dl>

      <h2>Images</h2>
      <div className="job-images">
        <figure className="job-image input-missing">
          <figcaption>Input</figcaption>
          <p>The API does not expose a job's input image.</p>
        </figure>
        {job.outputs.map((output, index) => (
          <figure key={output.url} className="job-image">
            <figcaption>Output {job.outputs.length > 1 ? index + 1 : ''} ({output.width}×{output.height}, {output.contentType}, {output.bytes} bytes)</figcaption>
            <div className="checkerboard"><img src={outputHref(client.baseUrl, output)} alt={`output ${index + 1}`} /></div>
            <a href={outputHref(client.baseUrl, output)} download={outputName(`${job.id}-${index + 1}`, output.contentType)}>Download</a>
          </figure>
        ))}
        {job.outputs.length === 0 && <p className="empty">{job.state === 'succeeded' ? 'This job wrote no image.' : 'No output yet.'}</p>}
      </div>

      <h2>Attempts</h2>
      {(job.error || failures.length > 0) && (
        <Table label="Attempts" columns={['Attempt', 'State', 'Error code', 'Message']}>
          {failures.map((e) => (
            <tr key={e.id}><td>{e.attempts}</td><td>{e.state}</td><td>{e.error!.code}</td><td>{e.error!.message}</td></tr>
          ))}
          {job.error && !failures.some((e) => e.attempts === job.attempts) && (
            <tr><td>{job.attempts}</td><td>{job.state}</td><td>{job.error.code}</td><td>{job.error.message}</td></tr>
          )}
        </Table>
      )}
      {!job.error && failures.length === 0 && <p className="empty">No attempt has failed.</p>}

      <h2>Timeline</h2>
      <ol className="timeline">
        <li><time>{new Date(job.createdAt).toLocaleTimeString()}</time> created</li>
        {job.startedAt && <li><time>{new Date(job.startedAt).toLocaleTimeString()}</time> started (latest attempt)</li>}
        {events.map((e) => (
          <li key={e.id}>
            <time>{new Date(e.at).toLocaleTimeString()}</time> {e.kind === 'state' ? e.state : `${Math.round(e.progress.percent)}%`}
            {e.progress.stage && ` · ${e.progress.stage}`}{e.progress.message && ` · ${e.progress.message}`}
            {e.error && ` · ${e.error.code}`}
          </li>
        ))}
        {job.finishedAt && !events.some((e) => FINISHED_STATES.has(e.state)) && <li><time>{new Date(job.finishedAt).toLocaleTimeString()}</time> {job.state}</li>}
      </ol>

      <h2>Result</h2>
      <JsonBlock value={job.result} />
      <h2>Metadata</h2>
      <JsonBlock value={job.metadata} />
    </section>
  );
}
