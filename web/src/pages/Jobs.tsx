import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { JOB_STATES, type Job, type JobFilter } from '@pixq/client';
import { Link, useSearchParams } from 'wouter';
import { useSession } from '../session';
import { useLiveJobs } from '../components/live-jobs';
import { errorText } from '../errors';
import { Table } from '../table';
import { OutputThumbnail, ProgressBar, StateWord, canCancel, canRetry } from '../components/JobBits';

const PAGE_SIZE = 20;

/** The filter a URL query names: `state`, `type`, `batch`, `from`/`to` (dates), `metadata=key=value` (repeated). */
function filterOf(params: URLSearchParams): JobFilter {
  const day = (name: string, end: boolean) => {
    const value = params.get(name);
    if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
    // Local days, as the date inputs show them; `to` includes its whole day.
    const at = new Date(`${value}T00:00:00`);
    if (end) at.setDate(at.getDate() + 1);
    return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
  };
  const state = params.get('state');
  const metadata = params.getAll('metadata').filter((pair) => /^[^=]+=/.test(pair));
  return {
    state: (JOB_STATES as readonly string[]).includes(state ?? '') ? (state as JobFilter['state']) : undefined,
    type: params.get('type') || undefined,
    batchId: params.get('batch') || undefined,
    createdAfter: day('from', false),
    createdBefore: day('to', true),
    metadata: metadata.length > 0 ? metadata : undefined,
  };
}

/** Every job of the caller, filtered, paged and kept live; cancel or retry one job or every match. */
export function JobsPage() {
  const { client } = useSession();
  const [params, setParams] = useSearchParams();
  const filterKey = params.toString();
  const filter = useMemo(() => filterOf(new URLSearchParams(filterKey)), [filterKey]);
  // Cursors of the pages before this one (for Previous), and this page's own.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const cursor = cursors.at(-1);
  const [page, setPage] = useState<{ ids: string[]; nextCursor: string | null }>();
  const [error, setError] = useState<string>();
  const refreshTimer = useRef<ReturnType<typeof setTimeout>>(undefined);

  const { jobs, read } = useLiveJobs(client, {}, (event, known) => {
    // A job this page does not show may belong on it (new on the first page, or now matching the state).
    if (!known && event.kind === 'state' && cursors.length === 1) refreshSoon();
  });

  const load = useCallback(async () => {
    try {
      const answer = await read(
        () => client.listJobs({ ...filter, cursor, limit: PAGE_SIZE }),
        (list) => list.jobs,
        true,
      );
      setPage({ ids: answer.jobs.map((j) => j.id), nextCursor: answer.nextCursor });
      setError(undefined);
    } catch (e) {
      setError(errorText(e));
    }
  }, [client, filter, cursor, read]);
  const refreshSoon = () => {
    // A burst of submissions is one reload, not one per event.
    clearTimeout(refreshTimer.current);
    refreshTimer.current = setTimeout(() => void load(), 300);
  };
  useEffect(() => () => clearTimeout(refreshTimer.current), []);

  useEffect(() => setCursors([undefined]), [filterKey]);
  useEffect(() => void load(), [load]);

  const act = async (action: () => Promise<Job>) => {
    try {
      await read(action, (job) => [job]);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <section className="jobs-page">
      <h1>Jobs</h1>
      <FilterForm params={params} onApply={(next) => setParams(next)} />
      <MatchingActions filter={filter} onDone={load} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <Table
        label="Jobs"
        columns={[
          { label: 'Output', hidden: true },
          'Job',
          'Type',
          'State',
          'Progress',
          'Attempts',
          'Created',
          'Batch',
          'Metadata',
          { label: 'Actions', hidden: true },
        ]}
      >
        {page?.ids
          .map((id) => jobs.get(id))
          .filter((job): job is Job => job !== undefined)
          .map((job) => (
            <tr key={job.id} data-job={job.id}>
              <td className="thumb-cell">
                <OutputThumbnail baseUrl={client.baseUrl} job={job} />
              </td>
              <td>
                <Link href={`/jobs/${job.id}`}>{job.id}</Link>
              </td>
              <td>{job.type}</td>
              <td>
                <StateWord state={job.state} />
              </td>
              <td>
                <ProgressBar progress={job.progress} />
              </td>
              <td>
                {job.attempts}/{job.maxAttempts}
              </td>
              <td>{new Date(job.createdAt).toLocaleString()}</td>
              <td>{job.batchId ?? ''}</td>
              <td className="metadata">
                {job.metadata
                  ? Object.entries(job.metadata)
                      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
                      .join(' ')
                  : ''}
              </td>
              <td>
                <div className="row-actions">
                  {canCancel(job) && (
                    <button type="button" className="danger" onClick={() => act(() => client.cancel(job.id))}>
                      Cancel
                    </button>
                  )}
                  {canRetry(job) && (
                    <button type="button" className="secondary" onClick={() => act(() => client.retry(job.id))}>
                      Retry
                    </button>
                  )}
                </div>
              </td>
            </tr>
          ))}
      </Table>
      {page && page.ids.length === 0 && <p className="empty">No jobs match.</p>}
      <nav className="pager">
        <button
          type="button"
          className="secondary"
          disabled={cursors.length === 1}
          onClick={() => setCursors((c) => c.slice(0, -1))}
        >
          Previous
        </button>
        <button
          type="button"
          className="secondary"
          disabled={!page?.nextCursor}
          onClick={() => page?.nextCursor && setCursors((c) => [...c, page.nextCursor!])}
        >
          Next
        </button>
      </nav>
    </section>
  );
}

function FilterForm({ params, onApply }: { params: URLSearchParams; onApply: (next: URLSearchParams) => void }) {
  const [draft, setDraft] = useState(() => draftOf(params));
  useEffect(() => setDraft(draftOf(params)), [params]);
  const set = (name: keyof typeof draft) => (e: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [name]: e.target.value }));
  const apply = (event: FormEvent) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const name of ['state', 'type', 'batch', 'from', 'to'] as const)
      if (draft[name].trim()) next.set(name, draft[name].trim());
    for (const pair of draft.metadata
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean))
      next.append('metadata', pair);
    onApply(next);
  };
  return (
    <form className="form-row filters" onSubmit={apply}>
      <label>
        State
        <select value={draft.state} onChange={set('state')}>
          <option value="">any</option>
          {JOB_STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Type <input value={draft.type} onChange={set('type')} placeholder="remove-background" />
      </label>
      <label>
        Batch <input value={draft.batch} onChange={set('batch')} />
      </label>
      <label>
        From <input type="date" value={draft.from} onChange={set('from')} />
      </label>
      <label>
        To <input type="date" value={draft.to} onChange={set('to')} />
      </label>
      <label>
        Metadata <input value={draft.metadata} onChange={set('metadata')} placeholder="recordId=123, shop=eu" />
      </label>
      <button type="submit">Filter</button>
      <button type="button" className="secondary" onClick={() => onApply(new URLSearchParams())}>
        Clear
      </button>
    </form>
  );
}

function draftOf(params: URLSearchParams) {
  return {
    state: params.get('state') ?? '',
    type: params.get('type') ?? '',
    batch: params.get('batch') ?? '',
    from: params.get('from') ?? '',
    to: params.get('to') ?? '',
    metadata: params.getAll('metadata').join(', '),
  };
}

/** Cancel or retry every job the filter matches: counts them first and asks before acting. */
function MatchingActions({ filter, onDone }: { filter: JobFilter; onDone: () => void }) {
  const { client } = useSession();
  const [asking, setAsking] = useState<{ action: 'cancel' | 'retry'; count: number }>();
  const [outcome, setOutcome] = useState<string>();
  const [error, setError] = useState<string>();
  useEffect(() => setAsking(undefined), [filter]);

  const ask = async (action: 'cancel' | 'retry') => {
    setOutcome(undefined);
    setError(undefined);
    try {
      setAsking({ action, count: (await client.countJobs(filter)).count });
    } catch (e) {
      setError(errorText(e));
    }
  };
  const confirm = async () => {
    if (!asking) return;
    setAsking(undefined);
    try {
      const { matched, changed } = await (asking.action === 'cancel'
        ? client.cancelMatching(filter)
        : client.retryMatching(filter));
      setOutcome(`${asking.action === 'cancel' ? 'Cancelled' : 'Retried'}: matched ${matched}, changed ${changed}`);
      onDone();
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <div className="matching-actions">
      <button type="button" className="danger" onClick={() => ask('cancel')}>
        Cancel all matching
      </button>
      <button type="button" className="secondary" onClick={() => ask('retry')}>
        Retry all matching
      </button>
      {asking && (
        <div className="confirm" role="alertdialog" aria-label="Confirm">
          <span>
            {asking.count} {asking.count === 1 ? 'job matches' : 'jobs match'} this filter.{' '}
            {asking.action === 'cancel' ? 'Cancel' : 'Retry'} every one that can be?
          </span>
          <button type="button" onClick={confirm}>
            Confirm
          </button>
          <button type="button" className="secondary" onClick={() => setAsking(undefined)}>
            Back
          </button>
        </div>
      )}
      {outcome && (
        <span className="outcome" role="status">
          {outcome}
        </span>
      )}
      {error && (
        <span className="error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
