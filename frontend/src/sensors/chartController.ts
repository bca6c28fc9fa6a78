// The detail chart's lifecycle, outside the component so it can be read on
// its own: loads the window shown (a preset range up to now, or a fixed
// window after a zoom, pan or custom range) for the sensor's metric and
// the metrics overlaid on it, appends live readings, and draws with uPlot
// at most once per animation frame.
//
// The shown window is the controller's, not uPlot's: every redraw sets the
// x scale from the view, so a live reading never moves a zoomed window
// (uPlot's own drag zoom would be undone by the next setData).
//
// Must be used from the UI thread only; destroy() when the chart goes.

import type uPlot from 'uplot';
import { errorText, formatDateTime, formatValue } from '../common/format';
import type { Services } from '../services';
import {
  type ChartEvent,
  type View,
  alignSeries,
  clippedIndexes,
  gapThreshold,
  needsFetch,
  resolutionFor,
  viewWindow,
  windowSlice,
  withGaps,
} from './chartModel';
import { clipMarksPlugin, markersPlugin, shiftPanPlugin } from './chartPlugins';
import { type RangeDef, type Series, appendPoint, fetchSeries, fetchWindow, mergePoints, robustRange, summarize } from './series';
import { type Point, sensorKey } from './store';

export interface ChartStatus {
  loading: boolean;
  error: string;
  /** Points of the chart's own metric loaded (readings or buckets). */
  points: number;
  /** Times (seconds) of its first and last point. */
  first?: number;
  last?: number;
  /** The text alternative. */
  summary?: string;
  /** Points of the chart's own metric in view that the robust y range cuts. */
  clipped: number;
  /** Gaps drawn in the chart's own metric in view, "fromISO/toISO" joined by spaces. */
  gaps: string;
  /** The window shown, epoch ms. */
  window?: [number, number];
  /** The bucket the data is drawn in ('' for raw readings). */
  bucket: string;
  /** The labels of the y axes (units), joined by "|": drawn on the canvas, so said here for tests. */
  axes?: string;
}

export interface Line {
  metric: string;
  unit: string;
}

export interface ChartOptions {
  sensorId: string;
  /** The chart's own metric first, then the overlaid ones. */
  lines: Line[];
  def: RangeDef;
  view: View;
  onStatus: (s: ChartStatus) => void;
  /** A drag selected [from, to] (epoch ms) to zoom into. */
  onZoom: (from: number, to: number) => void;
  /** A shift+drag asks to move the window by ms. */
  onPan: (ms: number) => void;
  /** More plugins (e.g. reference lines drawn by another feature). */
  plugins?: uPlot.Plugin[];
}

/** Colours of overlaid metrics, after the chart's own accent colour. */
const OVERLAY_COLOURS = ['#d97706', '#7c3aed', '#059669', '#db2777'];

export function overlayColour(i: number): string {
  return OVERLAY_COLOURS[i % OVERLAY_COLOURS.length];
}

interface LineState extends Line {
  key: string;
  series: Series | null;
  /** Live readings that came while the window was loading. */
  pending: Point[];
  /** Refetched thinned spans that came while the window was loading. */
  refetched: Point[];
}

interface Loaded {
  from: number;
  to: number;
  bucketMs?: number;
  /** Live readings have been appended since the load, so the data reaches now. */
  followsNow: boolean;
  /** Loaded for the live view of the preset range. */
  live: boolean;
}

export class ChartController {
  private readonly el: HTMLElement;
  private readonly svc: Services;
  private readonly opts: ChartOptions;
  private readonly lines: LineState[];
  private view: View;
  private plot: uPlot | null = null;
  /** Whether the plot was built for buckets (avg/min/max band) or raw points. */
  private plotBucketed: boolean | null = null;
  private loaded: Loaded | null = null;
  private loading = false;
  private loadSeq = 0;
  private disposed = false;
  private redrawScheduled = false;
  private events: readonly ChartEvent[] = [];
  /** The window shown, epoch seconds (uPlot's x unit). */
  private window: [number, number] = [0, 1];
  private lastStatus: ChartStatus | null = null;
  private readonly offs: (() => void)[] = [];
  private readonly resize: ResizeObserver | null;

  constructor(el: HTMLElement, svc: Services, opts: ChartOptions) {
    this.el = el;
    this.svc = svc;
    this.opts = opts;
    this.view = opts.view;
    this.lines = opts.lines.map((l) => ({ ...l, key: sensorKey(opts.sensorId, l.metric), series: null, pending: [], refetched: [] }));
    for (const line of this.lines) {
      this.offs.push(svc.sensors.onLive(line.key, (r, t) => this.append(line, t, r.value)));
      // A thinned span refetched by the store: merged into the points, or
      // the window reloaded when it is drawn in buckets.
      this.offs.push(
        svc.sensors.onHistory(line.key, (points) => {
          if (!line.series) {
            line.refetched.push(...points);
            return;
          }
          if (mergePoints(line.series, points)) this.scheduleRedraw();
          else void this.load();
        }),
      );
    }
    // A reconnect that could not resume missed readings: reload. A resumed
    // one replays them as ordinary readings (appended above).
    this.offs.push(svc.ws.reloadNeeded.on(() => void this.load()));
    // A live window ends now: it moves with the clock, not only when a
    // reading comes, so a sensor that falls silent shows as silence and a
    // marker of what just happened (a command, an alert) comes into view.
    this.offs.push(
      svc.clock.subscribe(() => {
        if (this.view.kind === 'live') this.scheduleRedraw();
      }),
    );
    this.resize =
      typeof ResizeObserver === 'function'
        ? new ResizeObserver(() => {
            if (this.plot) this.plot.setSize(chartSize(el));
          })
        : null;
    this.resize?.observe(el);
    void this.load();
  }

  destroy(): void {
    this.disposed = true;
    for (const off of this.offs) off();
    this.resize?.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  /** Shows another window: from what is loaded when it covers it finely enough, else loaded anew. */
  setView(view: View): void {
    if (view === this.view) return;
    this.view = view;
    const now = Date.now();
    const l = this.loaded;
    if (this.loading || !l) {
      void this.load();
      return;
    }
    if (view.kind === 'live') {
      const [from] = viewWindow(view, this.opts.def.ms, now);
      if (l.followsNow && l.from <= from + 1000 && l.bucketMs === this.opts.def.bucketMs) this.scheduleRedraw();
      else void this.load();
      return;
    }
    if (needsFetch(l, view.from, view.to, now)) void this.load();
    else this.scheduleRedraw();
  }

  /** The alert and command markers (all of them; those in view are drawn). */
  setEvents(events: readonly ChartEvent[]): void {
    this.events = events;
    this.scheduleRedraw();
  }

  private keepMs(now: number): number {
    const def = this.opts.def.ms;
    return this.view.kind === 'live' ? def : Math.max(def, now - this.view.from);
  }

  private append(line: LineState, t: number, v: number): void {
    if (this.disposed) return;
    if (!line.series || this.loading) {
      line.pending.push({ t, v });
      return;
    }
    // A window in the past does not need readings of now.
    if (!this.loaded?.followsNow) return;
    const keep = this.keepMs(t);
    appendPoint(line.series, t, v, keep);
    // appendPoint drops what scrolled out of the kept span.
    this.loaded.from = Math.max(this.loaded.from, t - keep);
    this.scheduleRedraw();
  }

  private async load(): Promise<void> {
    const seq = ++this.loadSeq;
    const { sensorId, def } = this.opts;
    const view = this.view;
    this.loading = true;
    this.report({ loading: true, error: '' });
    const started = Date.now();
    try {
      let loaded: Loaded;
      let fetched: Series[];
      if (view.kind === 'live') {
        fetched = await Promise.all(this.lines.map((l) => fetchSeries(this.svc.api, sensorId, l.metric, def)));
        loaded = { from: started - def.ms, to: started, bucketMs: def.bucketMs, followsNow: true, live: true };
      } else {
        const res = resolutionFor(view.to - view.from);
        fetched = await Promise.all(this.lines.map((l) => fetchWindow(this.svc.api, sensorId, l.metric, view.from, view.to, res)));
        // A window ending at (about) now is continued by live readings.
        loaded = { from: view.from, to: view.to, bucketMs: fetched[0]?.bucketMs, followsNow: view.to >= started - 1000, live: false };
      }
      if (this.disposed || seq !== this.loadSeq) return;
      this.lines.forEach((line, i) => {
        const s = fetched[i];
        // Readings that arrived while the request was in flight; the
        // request may have run before they were stored.
        if (loaded.followsNow) for (const p of line.pending) appendPoint(s, p.t, p.v, this.keepMs(p.t));
        mergePoints(s, line.refetched);
        line.pending = [];
        line.refetched = [];
        line.series = s;
      });
      this.loaded = loaded;
      const uPlotMod = await import('uplot');
      if (this.disposed || seq !== this.loadSeq) return;
      this.loading = false;
      const bucketed = !!this.lines[0].series?.bucketMs;
      if (!this.plot || this.plotBucketed !== bucketed) {
        this.plot?.destroy();
        this.plot = new uPlotMod.default(this.options(bucketed), [[]] as unknown as uPlot.AlignedData, this.el);
        this.plotBucketed = bucketed;
      }
      this.redraw();
    } catch (err) {
      if (this.disposed || seq !== this.loadSeq) return;
      this.loading = false;
      this.report({ loading: false, error: `Could not load history: ${errorText(err)}`, points: 0 });
    }
  }

  private scheduleRedraw(): void {
    if (this.redrawScheduled) return;
    this.redrawScheduled = true;
    this.svc.batcher.schedule(() => this.redraw());
  }

  private redraw(): void {
    this.redrawScheduled = false;
    const plot = this.plot;
    const main = this.lines[0].series;
    if (!plot || !main || this.disposed || this.loading) return;
    const now = Date.now();
    const [from, to] = viewWindow(this.view, this.opts.def.ms, now);
    this.window = [from / 1000, to / 1000];
    const parts = this.lines.map((l, i) => {
      const s = l.series!;
      // Overlays are drawn by their average only: one line per metric.
      return withGaps(s.t, i === 0 ? s.cols : [s.cols[0]], gapThreshold(s.t, s.bucketMs ? s.bucketMs / 1000 : undefined));
    });
    const aligned = alignSeries(parts);
    plot.batch(() => {
      plot.setData([aligned.t, ...aligned.cols] as uPlot.AlignedData, false);
      plot.setScale('x', { min: this.window[0], max: this.window[1] });
    });

    // What is in view, for the notices, the data attributes and the text alternative.
    const [i0, i1] = windowSlice(main.t, this.window[0], this.window[1]);
    const visible = main.cols[0].slice(i0, i1);
    const r = robustRange(visible);
    const clipped = r ? clippedIndexes(visible, r.lo, r.hi).length : 0;
    const gapsInView = parts[0].gaps.filter(([a, b]) => b >= this.window[0] && a <= this.window[1]);
    this.report({
      loading: false,
      error: '',
      points: main.t.length,
      first: main.t[0],
      last: main.t[main.t.length - 1],
      clipped,
      gaps: gapsInView.map(([a, b]) => `${iso(a)}/${iso(b)}`).join(' '),
      window: [from, to],
      bucket: main.bucketMs ? bucketName(main.bucketMs) : '',
      summary: this.describe(gapsInView, from, to),
      axes: plot.axes
        .slice(1)
        .map((a) => (typeof a.label === 'string' ? a.label : ''))
        .join('|'),
    });
  }

  /** The chart's text alternative: values in view, gaps, overlays and markers. */
  private describe(gaps: [number, number][], from: number, to: number): string {
    const parts: string[] = [`From ${formatDateTime(from)} to ${formatDateTime(to)}.`];
    this.lines.forEach((l, i) => {
      const s = l.series!;
      const [i0, i1] = windowSlice(s.t, from / 1000, to / 1000);
      const text = summarize(
        (i === 0 ? s.cols : [s.cols[0]]).map((c) => c.slice(i0, i1)),
        l.unit,
        formatValue,
      );
      parts.push(i === 0 ? text : `${l.metric}: ${text}`);
    });
    if (gaps.length > 0) {
      const longest = gaps.reduce((a, b) => (b[1] - b[0] > a[1] - a[0] ? b : a));
      const count = gaps.length === 1 ? 'One gap' : `${gaps.length} gaps`;
      parts.push(`${count} in the data; the longest from ${formatDateTime(longest[0] * 1000)} to ${formatDateTime(longest[1] * 1000)}.`);
    }
    const inView = this.events.filter((e) => e.t >= from && e.t <= to);
    if (inView.length > 0) {
      const shown = inView.slice(-10).map((e) => `${formatDateTime(e.t)} ${e.label}`);
      parts.push(`Markers: ${shown.join('; ')}${inView.length > 10 ? `; and ${inView.length - 10} earlier` : ''}.`);
    }
    return parts.join(' ');
  }

  private report(patch: Partial<ChartStatus>): void {
    const next: ChartStatus = { ...(this.lastStatus ?? { loading: true, error: '', points: 0, clipped: 0, gaps: '', bucket: '' }), ...patch };
    const prev = this.lastStatus;
    if (prev && (Object.keys(next) as (keyof ChartStatus)[]).every((k) => sameField(prev[k], next[k]))) return;
    this.lastStatus = next;
    this.opts.onStatus(next);
  }

  /** The robust y range of series idx over the window shown. */
  private yRange(u: uPlot, idx: number, dmin: number | null, dmax: number | null): uPlot.Range.MinMax {
    const [i0, i1] = windowSlice(u.data[0] as number[], this.window[0], this.window[1]);
    const col = (u.data[idx] ?? []) as (number | null | undefined)[];
    const vals: number[] = [];
    for (let i = i0; i < i1; i++) {
      const v = col[i];
      if (typeof v === 'number') vals.push(v);
    }
    const r = robustRange(vals);
    if (r) return [r.lo, r.hi];
    return dmin === null || dmax === null ? [0, 1] : [dmin, dmax];
  }

  private options(bucketed: boolean): uPlot.Options {
    const el = this.el;
    const line = cssVar('--accent', '#2563eb');
    const band = cssVar('--accent-weak', 'rgba(37,99,235,0.15)');
    const axis = cssVar('--fg-muted', '#666');
    const grid = cssVar('--border', '#ddd');
    const axisOpts: uPlot.Axis = { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const fmt = (unit: string) => (_u: uPlot, v: number | null) => (v == null ? '—' : formatValue(v) + (unit ? ' ' + unit : ''));
    const [main, ...overlays] = this.lines;
    // The hover shows the time to the second: these are per-second series.
    const series: uPlot.Series[] = [{ value: (_u, ts) => (ts === null ? '—' : formatDateTime(ts * 1000)) }];
    const scales: uPlot.Scales = {
      x: { time: true },
      // Robust: spikes are clipped at the edge (and marked) instead of
      // flattening the normal variation.
      y: { range: (u, dmin, dmax) => this.yRange(u, 1, dmin, dmax) },
    };
    const axes: uPlot.Axis[] = [
      // One clock with the rest of the screen (24 h).
      { ...axisOpts, values: (_u, splits, _ax, _space, incr) => splits.map((v) => axisTime(v * 1000, incr)) },
      {
        ...axisOpts,
        size: 70,
        label: main.unit ? (overlays.length ? `${main.metric} (${main.unit})` : main.unit) : overlays.length ? main.metric : undefined,
        labelSize: main.unit || overlays.length ? 18 : 0,
        values: (_u, splits) => splits.map((v) => formatValue(v)),
      },
    ];
    let bands: uPlot.Band[] | undefined;
    const name = (l: Line) => (overlays.length ? l.metric : 'value') + (l.unit ? ` (${l.unit})` : '');
    if (bucketed) {
      series.push(
        { label: overlays.length ? `${main.metric} avg` : 'avg', stroke: line, width: 1.5, value: fmt(main.unit), spanGaps: false },
        { label: 'min', stroke: band, width: 1, value: fmt(main.unit), spanGaps: false },
        { label: 'max', stroke: band, width: 1, value: fmt(main.unit), spanGaps: false },
      );
      bands = [{ series: [3, 2], fill: band }];
    } else {
      series.push({ label: name(main), stroke: line, width: 1.5, value: fmt(main.unit), points: { show: false }, spanGaps: false });
    }
    const marked = [1];
    overlays.forEach((l, i) => {
      const scale = `m:${l.metric}`;
      const idx = series.length;
      const colour = overlayColour(i);
      marked.push(idx);
      scales[scale] = { range: (u, dmin, dmax) => this.yRange(u, idx, dmin, dmax) };
      series.push({ label: name(l), scale, stroke: colour, width: 1.5, value: fmt(l.unit), points: { show: false }, spanGaps: false });
      axes.push({
        ...axisOpts,
        scale,
        side: 1,
        size: 70,
        stroke: colour,
        grid: { show: false },
        label: l.unit ? `${l.metric} (${l.unit})` : l.metric,
        labelSize: 18,
        values: (_u, splits) => splits.map((v) => formatValue(v)),
      });
    });
    return {
      ...chartSize(el),
      scales,
      axes,
      series,
      bands,
      legend: { show: true },
      // A drag selects a span of time to zoom into; the controller applies
      // it (see the file comment), so uPlot does not set the scale itself.
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [
          (u) => {
            const { left, width } = u.select;
            if (width > 2) this.opts.onZoom(u.posToVal(left, 'x') * 1000, u.posToVal(left + width, 'x') * 1000);
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
      },
      plugins: [
        clipMarksPlugin(() => marked),
        markersPlugin(() => this.events, { alert: cssVar('--crit', '#b4231b'), command: axis }),
        shiftPanPlugin((ms) => this.opts.onPan(ms)),
        ...(this.opts.plugins ?? []),
      ],
    };
  }
}

function sameField(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function bucketName(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

export function chartSize(el: HTMLElement): { width: number; height: number } {
  const width = Math.max(200, Math.floor(el.clientWidth));
  const height = Math.max(160, Math.min(360, Math.floor(window.innerHeight * 0.38)));
  return { width, height };
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Time axis labels in the screen's 24-hour clock: seconds only when ticks are under a minute apart. */
function axisTime(ms: number, incrSeconds: number): string {
  const d = new Date(ms);
  if (incrSeconds >= 86400) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const opts: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (incrSeconds < 60) opts.second = '2-digit';
  return d.toLocaleTimeString(undefined, opts);
}
