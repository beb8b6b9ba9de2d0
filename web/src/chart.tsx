import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

const HEIGHT = 200;

/**
 * A line chart over time (`times` in ms) with uPlot, as wide as its container; `points` marks each value, for
 * sparse series (a minute with one job between empty ones draws no line).
 */
export function TimeChart({
  title,
  times,
  series,
  points = false,
}: {
  title: string;
  times: number[];
  series: ChartSeries[];
  points?: boolean;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>(undefined);
  const labels = series.map((s) => s.label).join('|');

  useEffect(() => {
    const element = box.current!;
    const chart = new uPlot(
      {
        width: element.clientWidth,
        height: HEIGHT,
        // The legend names the lines; values at the cursor would read "–" until one hovers.
        legend: { live: false },
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            spanGaps: true,
            points: { show: points, size: 5, fill: s.color },
          })),
        ],
        axes: [{}, { size: 56, values: (_u, ticks) => ticks.map((t) => `${round(t)}`) }],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      },
      [[], ...series.map(() => [])],
      element,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
    // The chart is built once per set of series; new values go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `series` is the same labels with new values
  }, [labels, points]);

  useEffect(() => {
    plot.current?.setData([times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData);
  }, [times, series]);

  return (
    <figure className="card chart-card">
      <figcaption>{title}</figcaption>
      <div ref={box} className="chart" role="img" aria-label={`${title} chart`} />
    </figure>
  );
}

function round(v: number): string {
  return v >= 10 || Number.isInteger(v) ? v.toFixed(0) : String(Math.round(v * 100) / 100);
}
