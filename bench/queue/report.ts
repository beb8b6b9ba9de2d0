import type { Row, Settings } from './measure.js';

export type RowKey = 'pixq-sqlite' | 'pixq-postgres' | 'bullmq' | 'pgboss' | 'pgboss-ref';
export type Rows = Partial<Record<RowKey, Row>>;

const fmt = (n: number | undefined) => (n === undefined ? 'not measured' : Math.round(n).toLocaleString('en-US'));
const ms = (n: number | null) => (n === null ? 'n/a' : n < 10 ? n.toFixed(1) : fmt(n));

function processing(row: Row, s: Settings): string {
  const rate = fmt(row.processPerSec);
  return row.processed >= s.jobs
    ? rate
    : `${rate} (cut off: ${fmt(row.processed)} of ${fmt(s.jobs)} in ${s.capMs / 1000} s)`;
}

function latency(row: Row): [string, string] {
  const partial = row.probesStarted < row.probes ? ` (${row.probesStarted}/${row.probes} started)` : '';
  return [ms(row.p50), `${ms(row.p99)}${partial}`];
}

export function table(rows: Rows, s: Settings): string {
  const lines = [
    '| System | Enqueue (jobs/s) | Processing (jobs/s) | Start latency p50 (ms) | p99 (ms) | Idle RSS (MB) |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const row of Object.values(rows)) {
    const [p50, p99] = latency(row);
    const rss = row.rssMb === undefined ? '—' : row.rssMb.toFixed(0);
    lines.push(`| ${row.label} | ${fmt(row.enqueuePerSec)} | ${processing(row, s)} | ${p50} | ${p99} | ${rss} |`);
  }
  return lines.join('\n');
}

interface Target {
  text: string;
  met: boolean | undefined;
  detail: string;
}

/** The goals pixq is held to; a target whose rows were not measured is reported as not checked. */
export function targets(rows: Rows): Target[] {
  const proc = (k: RowKey) => rows[k]?.processPerSec;
  const both = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : a >= b);
  const rss = [rows['pixq-sqlite']?.rssMb, rows['pixq-postgres']?.rssMb].filter((v): v is number => v !== undefined);
  return [
    {
      text: 'pixq/SQLite processing ≥ BullMQ',
      met: both(proc('pixq-sqlite'), proc('bullmq')),
      detail: `${fmt(proc('pixq-sqlite'))} vs ${fmt(proc('bullmq'))}`,
    },
    {
      text: 'pixq/PostgreSQL processing ≥ pg-boss (same concurrency)',
      met: both(proc('pixq-postgres'), proc('pgboss')),
      detail: `${fmt(proc('pixq-postgres'))} vs ${fmt(proc('pgboss'))}`,
    },
    {
      text: 'pixq/SQLite processing ≥ 5,000 jobs/s',
      met: both(proc('pixq-sqlite'), 5000),
      detail: fmt(proc('pixq-sqlite')),
    },
    {
      text: 'pixq idle RSS < 150 MB',
      met: rss.length === 0 ? undefined : Math.max(...rss) < 150,
      detail: rss.map((v) => `${v.toFixed(0)} MB`).join(', '),
    },
  ];
}

export function targetLines(rows: Rows): string {
  const mark = (met: boolean | undefined) => (met === undefined ? 'not checked' : met ? 'MET' : 'MISSED');
  return targets(rows)
    .map((t) => `- ${t.text}: **${mark(t.met)}** (${t.detail})`)
    .join('\n');
}
