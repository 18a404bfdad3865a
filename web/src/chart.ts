// uPlot helpers: time axes in UTC, gaps as gaps, zoom (drag a range or turn the wheel) and
// pan (drag with Shift held), double-click to go back to the whole range.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const PALETTE = ['#1f6fb2', '#d9622b', '#2e9e5b', '#8a4fbf', '#c23b5a', '#6b7c2e', '#0f8f96', '#b08a1d', '#555f6d'];

// Time axis labels in 24-hour UTC (uPlot's table form: tick increment, then the label formats).
export const TIME_VALUES: uPlot.Axis.Values = [
  [3600 * 24 * 365, '{YYYY}', null, null, null, null, null, null, 1],
  [3600 * 24 * 28, '{MMM}', '\n{YYYY}', null, null, null, null, null, 1],
  [3600 * 24, '{MM}-{DD}', '\n{YYYY}', null, null, null, null, null, 1],
  [3600, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [60, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
  [1, ':{ss}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
  [0.001, ':{ss}.{fff}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
];

export function utcDate(ts: number): Date {
  return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');
}

// A value axis as wide as its widest label, whatever the field's magnitude: a fixed width cut
// pressure's "1,006.95" to ",006.95". uPlot asks again after each layout pass, with the labels
// of the new tick spacing; past the second pass the last width stands, so the layout converges.
const LABEL_MARGIN = 4;
const MIN_AXIS_WIDTH = 40;

function fitLabels(u: uPlot, values: string[] | null, axisIdx: number, cycleNum: number): number {
  const axis = u.axes[axisIdx] as uPlot.Axis & { _size?: number; font: unknown };
  if (cycleNum > 1 && axis._size) return axis._size;
  if (!values || values.length === 0) return MIN_AXIS_WIDTH;
  // uPlot keeps the resolved font as [css font scaled to device pixels, size, css size].
  const font = Array.isArray(axis.font) ? String(axis.font[0]) : String(axis.font ?? '');
  u.ctx.save();
  if (font) u.ctx.font = font;
  let widest = 0;
  for (const v of values) {
    if (v == null) continue;
    for (const line of String(v).split('\n')) widest = Math.max(widest, u.ctx.measureText(line).width);
  }
  u.ctx.restore();
  const ticks = axis.ticks?.show === false ? 0 : (axis.ticks?.size ?? 10);
  const gap = axis.gap ?? 5;
  return Math.max(MIN_AXIS_WIDTH, Math.ceil(ticks + gap + widest / devicePixelRatio + LABEL_MARGIN));
}

// Charts stacked one above the other (a sensor's fields) share the widest of their axes, so
// that their time axes line up.
export class AxisGroup {
  width = 0;

  reset(): void {
    this.width = 0;
  }
}

// The y axis of every chart; `group` when it is stacked with others.
export function valueAxis(group?: AxisGroup): uPlot.Axis {
  return {
    size: (u, values, axisIdx, cycleNum) => {
      const own = fitLabels(u, values, axisIdx, cycleNum);
      if (!group) return own;
      group.width = Math.max(group.width, own);
      return group.width;
    },
  };
}

// Inserts a null after every point followed by a silence longer than `maxGap` seconds, so
// that uPlot breaks the line there instead of drawing across the gap.
export function withGaps(xs: number[], ys: (number | null)[][], maxGap: number): [number[], (number | null)[][]] {
  const ox: number[] = [];
  const oy: (number | null)[][] = ys.map(() => []);
  for (let i = 0; i < xs.length; i++) {
    if (i > 0 && xs[i] - xs[i - 1] > maxGap) {
      ox.push(xs[i - 1] + maxGap / 2);
      for (const o of oy) o.push(null);
    }
    ox.push(xs[i]);
    for (let k = 0; k < ys.length; k++) oy[k].push(ys[k][i]);
  }
  return [ox, oy];
}

// The usual spacing of a series: the median of its steps (seconds).
export function medianStep(xs: number[]): number {
  if (xs.length < 2) return 1;
  const steps: number[] = [];
  const stride = Math.max(1, Math.floor(xs.length / 2000));
  for (let i = stride; i < xs.length; i += stride) steps.push((xs[i] - xs[i - stride]) / stride);
  steps.sort((a, b) => a - b);
  return steps[Math.floor(steps.length / 2)] || 1;
}

// Wheel zoom around the cursor and Shift+drag pan, on the x axis. onUserScale tells the owner
// that the person chose a range (so live updates stop moving it).
export function zoomPanPlugin(onUserScale: (u: uPlot, min: number, max: number) => void): uPlot.Plugin {
  return {
    hooks: {
      ready: (u: uPlot) => {
        const over = u.over;
        over.addEventListener(
          'wheel',
          (e: WheelEvent) => {
            e.preventDefault();
            const left = e.clientX - over.getBoundingClientRect().left;
            if (left < 0 || left > over.clientWidth) return;
            const xMin = u.scales.x.min!;
            const xMax = u.scales.x.max!;
            const at = u.posToVal(left, 'x');
            const factor = e.deltaY < 0 ? 0.8 : 1.25;
            const min = at - (at - xMin) * factor;
            const max = at + (xMax - at) * factor;
            onUserScale(u, min, max);
          },
          { passive: false },
        );
        over.addEventListener('mousedown', (e: MouseEvent) => {
          if (!e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          e.stopPropagation();
          const x0 = e.clientX;
          const min0 = u.scales.x.min!;
          const max0 = u.scales.x.max!;
          const perPx = (max0 - min0) / u.bbox.width * devicePixelRatio;
          const move = (m: MouseEvent) => {
            const dx = (m.clientX - x0) * perPx;
            u.setScale('x', { min: min0 - dx, max: max0 - dx });
          };
          const up = () => {
            document.removeEventListener('mousemove', move);
            document.removeEventListener('mouseup', up);
            onUserScale(u, u.scales.x.min!, u.scales.x.max!);
          };
          document.addEventListener('mousemove', move);
          document.addEventListener('mouseup', up);
        }, true);
      },
    },
  };
}

// Keeps a chart as wide as its container.
export function autoWidth(u: uPlot, container: HTMLElement, height: number): () => void {
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, Math.floor(container.clientWidth));
    if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
  });
  ro.observe(container);
  return () => ro.disconnect();
}

export { uPlot };
