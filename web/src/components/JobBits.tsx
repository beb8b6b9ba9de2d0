import type { Job } from '@pixq/client';

/** States a job can be cancelled in, and states it can be retried from (the API refuses the others). */
export const canCancel = (job: Job) => ['queued', 'delayed', 'running'].includes(job.state);
export const canRetry = (job: Job) => ['failed', 'cancelled'].includes(job.state);

/** A job's state as a word, coloured by class `state-<word>`. */
export function StateWord({ state }: { state: Job['state'] }) {
  return <span className={`state state-${state}`}>{state}</span>;
}

/** Progress as a bar with its percent and stage. */
export function ProgressBar({ progress }: { progress: Job['progress'] }) {
  const percent = Math.round(progress.percent);
  return (
    <span className="progress-cell">
      <progress value={percent} max={100} aria-label="progress" /> {percent}%
      {progress.stage && <span className="progress-stage"> {progress.stage}</span>}
    </span>
  );
}

/** A JSON value, pretty-printed. */
export function JsonBlock({ value }: { value: unknown }) {
  return <pre className="json">{value === null || value === undefined ? '—' : JSON.stringify(value, null, 2)}</pre>;
}

/** The output's URL as the browser fetches it: signed paths are relative to the API. */
export function outputHref(baseUrl: string, output: Job['outputs'][number]): string {
  return new URL(output.url, baseUrl + '/').href;
}

/** A thumbnail of a job's first output (a signed link; the server renders and caches it). */
export function OutputThumbnail({ baseUrl, job }: { baseUrl: string; job: Job }) {
  const output = job.state === 'succeeded' ? job.outputs[0] : undefined;
  if (!output) return null;
  return (
    <img
      className="thumb"
      src={new URL(output.thumbnailUrl, baseUrl + '/').href}
      alt={`output of ${job.id}`}
      loading="lazy"
      width={48}
      height={48}
    />
  );
}

/** A file name for an output: the input's name with the output's extension. */
export function outputName(inputName: string, contentType: string): string {
  const extension =
    { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp', 'image/avif': 'avif', 'application/json': 'json' }[
      contentType
    ] ?? 'bin';
  return `${inputName.replace(/\.[^./]*$/, '') || 'output'}.${extension}`;
}
