import type { Dialect } from '../connect.js';

const cache = new Map<string, string>();

/**
 * The VALUES list of a hand-written multi-row insert: `(?, ?), (?, ?)` on SQLite, `($1, $2), ($3, $4)` on
 * PostgreSQL, for `rows` rows of `columns` values each. Cached: the texts repeat, and so do the prepared
 * statements SQLite keeps for them.
 */
export function valueRows(dialect: Dialect, rows: number, columns: number): string {
  const key = `${dialect}:${rows}:${columns}`;
  let text = cache.get(key);
  if (text === undefined) {
    const placeholder = (n: number) => (dialect === 'postgres' ? `$${n + 1}` : '?');
    const row = (r: number) =>
      `(${Array.from({ length: columns }, (_, c) => placeholder(r * columns + c)).join(', ')})`;
    text = Array.from({ length: rows }, (_, r) => row(r)).join(', ');
    cache.set(key, text);
  }
  return text;
}
