import type { ReactNode } from 'react';

/** A column heading: its text, right-aligned for numbers, or read to screen readers only (a column of buttons). */
export type Column = string | { label: string; numeric?: boolean; hidden?: boolean };

/** A table named `label` (how tests and screen readers find it) that scrolls sideways inside its box on narrow screens. */
export function Table({ label, columns, children }: { label: string; columns: Column[]; children: ReactNode }) {
  return (
    <div className="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {columns.map((column) => {
              const { label: text, numeric, hidden } = typeof column === 'string' ? { label: column } : column;
              return (
                <th key={text} scope="col" className={numeric ? 'num' : undefined}>
                  {hidden ? <span className="visually-hidden">{text}</span> : text}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
