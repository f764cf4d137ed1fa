import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

/**
 * A small time chart (uPlot: canvas, about 50 KB): `times` in seconds, one line per series. The
 * figure is also given as text for screen readers (the last value of each series).
 */
export const Chart = ({
  title,
  times,
  series,
}: {
  title: string;
  times: readonly number[];
  series: readonly Series[];
}) => {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = series.map((s) => s.label).join('\u0000');
  useEffect(() => {
    if (!box.current) return;
    const width = Math.min(720, box.current.clientWidth || 320);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        series: [
          {},
          ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2 })),
        ],
        axes: [{}, { size: 60 }],
        legend: { show: true },
      },
      [[...times], ...series.map((s) => [...s.values])] as uPlot.AlignedData,
      box.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = undefined;
    };
    // built again only when the series change; new points go through setData below
  }, [shape]);
  useEffect(() => {
    plot.current?.setData([[...times], ...series.map((s) => [...s.values])] as uPlot.AlignedData);
  }, [times, series]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div
        ref={box}
        role="img"
        aria-label={`${title}: ${series.map((s) => `${s.label} ${s.values.at(-1) ?? '—'}`).join(', ')}`}
      />
    </figure>
  );
};
