import { JOB_STATES, type JobState, type StatsSeries, type Vendor, type Worker } from '@pixq/client';
import { useCallback, useMemo, useState } from 'react';
import { TimeChart } from '../chart';
import { errorText } from '../errors';
import { useRefresh } from '../live';
import { useSession } from '../session';
import { Table } from '../table';

type Counts = Partial<Record<JobState, number>>;

/** What GET /v1/stats answers (the client types it loosely). */
interface Stats {
  byType: Record<string, Counts>;
  byVendor: Record<string, Counts>;
  totals: Counts;
  window: { ms: number; finished: number; throughput: number };
}

interface Snapshot {
  stats: Stats;
  series: StatsSeries;
  workers?: Worker[];
  vendors?: Vendor[];
  at: number;
}

/** A fallback refresh; counts follow job state events between (see useRefresh). */
const POLL_MS = 10_000;
/** A worker heartbeats every third of PIXQ_LEASE_MS (30 s by default): silent this long, it missed three. */
const STALE_MS = 30_000;

/** Counts by state now, the last hour's throughput and latency, and (admin) every vendor and worker. */
export function OverviewPage() {
  const { client, who } = useSession();
  const admin = who.kind === 'admin';
  const [snapshot, setSnapshot] = useState<Snapshot>();
  const [error, setError] = useState<string>();

  const load = useCallback(() => {
    Promise.all([
      client.stats(60).then((s) => s as unknown as Stats),
      client.statsSeries({ minutes: 60 }),
      admin ? client.workers() : undefined,
      admin ? client.vendors() : undefined,
    ]).then(
      ([stats, series, workers, vendors]) => {
        setSnapshot({ stats, series, workers: workers?.workers, vendors: vendors?.vendors, at: Date.now() });
        setError(undefined);
      },
      (e: unknown) => setError(errorText(e)),
    );
  }, [client, admin]);
  useRefresh(load, POLL_MS);

  if (!snapshot)
    return error ? (
      <p role="alert" className="error">
        {error}
      </p>
    ) : (
      <p className="loading">Loading…</p>
    );
  const { stats, series, workers, vendors } = snapshot;
  const vendorName = (id: string) => vendors?.find((v) => v.id === id)?.name ?? id;
  return (
    <>
      <h1>Overview</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <section aria-labelledby="totals-heading">
        <h2 id="totals-heading">Jobs by state</h2>
        <ul className="totals" aria-label="Jobs by state">
          {JOB_STATES.map((state) => (
            <li key={state}>
              <span className="n" data-state={state}>
                {stats.totals[state] ?? 0}
              </span>
              <span className="label">{state}</span>
            </li>
          ))}
        </ul>
      </section>
      <CountsTable title="By job type" first="Type" rows={Object.entries(stats.byType)} />
      {admin && (
        <CountsTable
          title="By vendor"
          first="Vendor"
          rows={Object.entries(stats.byVendor).map(([id, c]) => [vendorName(id), c])}
        />
      )}
      <h2>Last hour</h2>
      <Charts series={series} />
      {workers && <Workers workers={workers} now={snapshot.at} />}
    </>
  );
}

function CountsTable({ title, first, rows }: { title: string; first: string; rows: [string, Counts][] }) {
  return (
    <section>
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <p className="hint">No jobs yet.</p>
      ) : (
        <Table label={title} columns={[first, ...JOB_STATES.map((label) => ({ label, numeric: true }))]}>
          {rows
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, counts]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                {JOB_STATES.map((s) => (
                  <td key={s} className="num">
                    {counts[s] ?? 0}
                  </td>
                ))}
              </tr>
            ))}
        </Table>
      )}
    </section>
  );
}

function Charts({ series }: { series: StatsSeries }) {
  const charts = useMemo(() => {
    const b = series.buckets;
    return {
      times: b.map((x) => Date.parse(x.at)),
      throughput: [
        { label: 'finished', color: '#1d5fd1', values: b.map((x) => x.finished) },
        { label: 'failed', color: '#b42318', values: b.map((x) => x.failed) },
      ],
      latency: [
        { label: 'wait p50', color: '#7aa2e3', values: b.map((x) => x.waitMs.p50) },
        { label: 'wait p95', color: '#1d5fd1', values: b.map((x) => x.waitMs.p95) },
        { label: 'run p50', color: '#e3a87a', values: b.map((x) => x.runMs.p50) },
        { label: 'run p95', color: '#b45309', values: b.map((x) => x.runMs.p95) },
      ],
    };
  }, [series]);
  return (
    <div className="grid">
      <TimeChart title="Jobs finished per minute" times={charts.times} series={charts.throughput} />
      <TimeChart title="Wait and run time (ms)" times={charts.times} series={charts.latency} points />
    </div>
  );
}

function Workers({ workers, now }: { workers: Worker[]; now: number }) {
  return (
    <section>
      <h2>Workers</h2>
      {workers.length === 0 ? (
        <p className="hint">No worker has reported recently.</p>
      ) : (
        <Table
          label="Workers"
          columns={['Worker', 'Slots per type', { label: 'Running', numeric: true }, 'Last heartbeat']}
        >
          {workers.map((w) => {
            const age = now - Date.parse(w.heartbeatAt);
            const stale = age > STALE_MS;
            return (
              <tr key={w.id}>
                <th scope="row">
                  {w.host} (pid {w.pid}){w.stopping && ' stopping'}
                </th>
                <td className="wrap">
                  {Object.entries(w.slots)
                    .map(([type, n]) => `${type} ${n}`)
                    .join(', ')}
                </td>
                <td className="num">{w.running}</td>
                <td className={stale ? 'stale' : undefined}>
                  {ago(age)}
                  {stale && ' (stale)'}
                </td>
              </tr>
            );
          })}
        </Table>
      )}
    </section>
  );
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}
