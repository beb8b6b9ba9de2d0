import { useEffect, useRef, useState, type DragEvent, type FormEvent } from 'react';
import { zipSync } from 'fflate';
import type { Job } from '@pixq/client';
import { Link } from 'wouter';
import { useSession } from '../session';
import { useLiveJobs } from '../components/live-jobs';
import type { Template } from '@pixq/client';
import { errorText } from '../errors';
import { parseOptionsJson, submissionOf } from '../components/operations';
import { OutputThumbnail, ProgressBar, StateWord, outputHref, outputName } from '../components/JobBits';

interface Entry {
  key: number;
  file: File;
  jobId?: string;
  /** The API refused this file (or it could not be sent). */
  error?: string;
  sending?: boolean;
}

/** Upload images and process them with one operation; each file's job is followed live until it finishes. */
export function UploadPage() {
  const { client } = useSession();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [jobTypes, setJobTypes] = useState<string[]>([]);
  const [operation, setOperation] = useState('product-cutout-white');
  const [optionsText, setOptionsText] = useState('');
  const [formError, setFormError] = useState<string>();
  const [zipping, setZipping] = useState(false);
  const nextKey = useRef(1);
  const { jobs, read } = useLiveJobs(client);
  const reread = useRef(new Set<string>());

  // Events carry no outputs: a job seen succeeding is read once more for its download URL.
  useEffect(() => {
    for (const job of jobs.values()) {
      if (job.state !== 'succeeded' || job.outputs.length > 0 || reread.current.has(job.id)) continue;
      reread.current.add(job.id);
      read(
        () => client.job(job.id),
        (j) => [j],
      ).catch((error: unknown) => setFormError(errorText(error)));
    }
  }, [client, jobs, read]);

  useEffect(() => {
    client.templates().then(
      (answer) => setTemplates(answer.templates),
      (error: unknown) => setFormError(`Templates could not be read: ${errorText(error)}`),
    );
    client.jobTypes().then(
      (answer) => setJobTypes(answer.available),
      (error: unknown) => setFormError(`Job types could not be read: ${errorText(error)}`),
    );
  }, [client]);

  const addFiles = (files: FileList | null) => {
    const added = [...(files ?? [])].map((file) => ({ key: nextKey.current++, file }));
    setEntries((current) => [...current, ...added]);
  };
  const update = (key: number, change: Partial<Entry>) =>
    setEntries((current) => current.map((e) => (e.key === key ? { ...e, ...change } : e)));

  const process = async (event: FormEvent) => {
    event.preventDefault();
    setFormError(undefined);
    let options: Record<string, unknown> | undefined;
    try {
      options = parseOptionsJson(optionsText);
    } catch (error) {
      setFormError((error as Error).message);
      return;
    }
    const waiting = entries.filter((e) => !e.jobId && !e.sending);
    if (waiting.length === 0) {
      setFormError('Choose one or more images first.');
      return;
    }
    const submission = submissionOf(operation, templates);
    await Promise.all(
      waiting.map(async (entry) => {
        update(entry.key, { sending: true, error: undefined });
        try {
          const job = await read(
            () => client.submit({ ...submission, options, file: entry.file }),
            (j) => [j],
          );
          update(entry.key, { sending: false, jobId: job.id });
        } catch (error) {
          update(entry.key, { sending: false, error: errorText(error) });
        }
      }),
    );
  };

  const succeeded = entries.flatMap((entry) => {
    const job = entry.jobId ? jobs.get(entry.jobId) : undefined;
    return job?.state === 'succeeded' && job.outputs[0] ? [{ entry, job }] : [];
  });

  const downloadAll = async () => {
    setZipping(true);
    try {
      const files: Record<string, Uint8Array> = {};
      for (const { entry, job } of succeeded) {
        const bytes = new Uint8Array(await (await client.download(job.id)).arrayBuffer());
        files[uniqueName(files, outputName(entry.file.name, job.outputs[0].contentType))] = bytes;
      }
      // Stored, not deflated: the outputs are compressed images already.
      saveBlob(new Blob([zipSync(files, { level: 0 }) as BlobPart], { type: 'application/zip' }), 'pixq-outputs.zip');
    } catch (error) {
      setFormError(`The zip could not be made: ${errorText(error)}`);
    } finally {
      setZipping(false);
    }
  };

  return (
    <section className="upload-page">
      <h1>Upload</h1>
      <form onSubmit={process} className="upload-form">
        <DropZone onFiles={addFiles} />
        <label>
          Operation
          <select value={operation} onChange={(e) => setOperation(e.target.value)}>
            <optgroup label="Templates">
              {templates.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.name}
                  {t.builtIn ? '' : ' (yours)'}
                </option>
              ))}
            </optgroup>
            <optgroup label="Job types">
              {jobTypes.map((type) => (
                <option key={type} value={type}>
                  {type}
                </option>
              ))}
            </optgroup>
          </select>
        </label>
        <label>
          Options (JSON)
          <textarea
            value={optionsText}
            onChange={(e) => setOptionsText(e.target.value)}
            rows={4}
            placeholder='{"format": "png"}'
            spellCheck={false}
          />
        </label>
        {formError && (
          <p className="error" role="alert">
            {formError}
          </p>
        )}
        <div className="actions">
          <button type="submit">Process</button>
          {succeeded.length > 0 && (
            <button type="button" onClick={downloadAll} disabled={zipping}>
              Download all
            </button>
          )}
        </div>
      </form>
      <ul className="upload-files">
        {entries.map((entry) => (
          <FileRow
            key={entry.key}
            entry={entry}
            job={entry.jobId ? jobs.get(entry.jobId) : undefined}
            baseUrl={client.baseUrl}
          />
        ))}
      </ul>
    </section>
  );
}

function DropZone({ onFiles }: { onFiles: (files: FileList | null) => void }) {
  const [over, setOver] = useState(false);
  const drop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    onFiles(event.dataTransfer.files);
  };
  return (
    <div
      className={over ? 'drop-zone over' : 'drop-zone'}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={drop}
    >
      <label>
        Images
        <input
          type="file"
          multiple
          accept="image/*"
          onChange={(e) => {
            onFiles(e.target.files);
            e.target.value = ''; // the same file may be chosen again
          }}
        />
      </label>
      <p>or drop images here</p>
    </div>
  );
}

function FileRow({ entry, job, baseUrl }: { entry: Entry; job: Job | undefined; baseUrl: string }) {
  const output = job?.state === 'succeeded' ? job.outputs[0] : undefined;
  return (
    <li className="upload-file" data-file={entry.file.name}>
      {job && <OutputThumbnail baseUrl={baseUrl} job={job} />}
      <span className="file-name">{entry.file.name}</span>
      {job ? (
        <StateWord state={job.state} />
      ) : (
        <span className="state">{entry.sending ? 'sending' : entry.error ? 'refused' : 'ready'}</span>
      )}
      {job && <ProgressBar progress={job.progress} />}
      {job && (
        <Link href={`/jobs/${job.id}`} className="job-link">
          {job.id}
        </Link>
      )}
      {output && (
        <a href={outputHref(baseUrl, output)} download={outputName(entry.file.name, output.contentType)}>
          Download
        </a>
      )}
      {job?.error && (
        <span className="job-error">
          {job.error.code}: {job.error.message}
        </span>
      )}
      {entry.error && <span className="job-error">{entry.error}</span>}
    </li>
  );
}

function uniqueName(taken: Record<string, unknown>, name: string): string {
  let candidate = name;
  for (let n = 2; candidate in taken; n++) candidate = name.replace(/(\.[^.]*)?$/, (ext) => `-${n}${ext}`);
  return candidate;
}

function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  // After the click has handed the URL to the download.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
