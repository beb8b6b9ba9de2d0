import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

const HEIGHT = 200;

/** A line chart over time (`times` in ms) with uPlot, as wide as its container. */
export function TimeChart({ title, unit, times, series }: { title: string; unit: string; times: number[]; series: ChartSeries[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>(undefined);
  const labels = series.map((s) => s.label).join('|');

  useEffect(() => {
    const element = box.current!;
    const chart = new uPlot({
      width: element.clientWidth,
      height: HEIGHT,
      series: [
        {},
        ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true, value: (_u: uPlot, v: number | null) => (v === null ? '–' : `${round(v)} ${unit}`) })),
      ],
      axes: [{}, { size: 56, values: (_u, ticks) => ticks.map((t) => `${round(t)}`) }],
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    }, [[], ...series.map(() => [])], element);
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
    // The chart is built once per set of series; new values go through setData below.
  }, [labels, unit]);

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
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : String(Math.round(v * 100) / 100);
}
