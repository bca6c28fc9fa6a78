// The detail chart's pure logic: where the data has gaps, which window of
// time is shown (live, zoomed, panned, custom), at which resolution to load
// it, how series of several metrics line up, and where alert and command
// markers go. No DOM, no uPlot: unit-tested in chartModel.test.ts.

import { parseTs } from '../common/format';
import type { Alert, CommandRecord } from '../types';
import { lowerBound, upperBound } from './series';

// ---- Gaps ------------------------------------------------------------------

/**
 * The time between two points (seconds) above which the chart draws a gap.
 * Bucketed: more than one bucket apart means a bucket with no readings.
 * Raw: more than three times the median interval (the sensor's normal pace,
 * robust against the gaps themselves), and never below one second plus the
 * median so timestamp jitter of a fast sensor does not cut its line.
 */
export function gapThreshold(t: ArrayLike<number>, bucketS?: number): number {
  if (bucketS) return bucketS * 1.5;
  const n = t.length;
  if (n < 3) return Infinity;
  const d: number[] = [];
  for (let i = 1; i < n; i++) {
    const x = t[i] - t[i - 1];
    if (x > 0) d.push(x);
  }
  if (d.length === 0) return Infinity;
  const median = quickMedian(d);
  return Math.max(3 * median, median + 1);
}

/** The median of v (reordered in place), in linear time on average. */
function quickMedian(v: number[]): number {
  const k = v.length >> 1;
  let lo = 0;
  let hi = v.length - 1;
  while (lo < hi) {
    const pivot = v[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        const tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return v[k];
}

export interface Gapped {
  t: number[];
  cols: (number | null)[][];
  /** The gaps drawn, each as the times (seconds) of the points either side. */
  gaps: [number, number][];
}

/**
 * Inserts a null row between two points further apart than threshold
 * seconds: uPlot (spanGaps false) breaks the line there. The input is not
 * modified, so the live series keeps appending to its own arrays.
 */
export function withGaps(t: readonly number[], cols: readonly (readonly number[])[], threshold: number): Gapped {
  const gaps: [number, number][] = [];
  if (!Number.isFinite(threshold)) return { t: t.slice(), cols: cols.map((c) => c.slice()), gaps };
  for (let i = 1; i < t.length; i++) if (t[i] - t[i - 1] > threshold) gaps.push([t[i - 1], t[i]]);
  if (gaps.length === 0) return { t: t.slice(), cols: cols.map((c) => c.slice()), gaps };
  const outT: number[] = [];
  const outCols: (number | null)[][] = cols.map(() => []);
  for (let i = 0; i < t.length; i++) {
    if (i > 0 && t[i] - t[i - 1] > threshold) {
      outT.push((t[i - 1] + t[i]) / 2);
      for (const c of outCols) c.push(null);
    }
    outT.push(t[i]);
    for (let j = 0; j < cols.length; j++) outCols[j].push(cols[j][i]);
  }
  return { t: outT, cols: outCols, gaps };
}

/**
 * Lines up series with different times (overlaid metrics) on one time
 * column, as uPlot wants. Where a series has no point at a time the value
 * is undefined, which uPlot steps over (the line continues); the nulls of
 * gaps stay null (the line breaks).
 */
export function alignSeries(parts: readonly { t: readonly number[]; cols: readonly (readonly (number | null)[])[] }[]): {
  t: number[];
  cols: (number | null | undefined)[][];
} {
  if (parts.length === 1) return { t: parts[0].t.slice(), cols: parts[0].cols.map((c) => c.slice()) };
  const all = new Set<number>();
  for (const p of parts) for (const x of p.t) all.add(x);
  const t = [...all].sort((a, b) => a - b);
  const index = new Map<number, number>();
  t.forEach((x, i) => index.set(x, i));
  const cols: (number | null | undefined)[][] = [];
  for (const p of parts) {
    for (const c of p.cols) {
      const out: (number | null | undefined)[] = new Array(t.length).fill(undefined);
      for (let i = 0; i < p.t.length; i++) out[index.get(p.t[i])!] = c[i];
      cols.push(out);
    }
  }
  return { t, cols };
}

/** Indexes of the finite values outside [lo, hi]: the spikes the robust range cut. */
export function clippedIndexes(values: ArrayLike<number | null | undefined>, lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v) && (v < lo || v > hi)) out.push(i);
  }
  return out;
}

// ---- The window of time shown ----------------------------------------------

/** Live: the preset range up to now, moving. Fixed: a window (epoch ms) that stays put while readings arrive. */
export type View = { kind: 'live' } | { kind: 'fixed'; from: number; to: number };

export const LIVE: View = { kind: 'live' };

/** The shortest window one can zoom into, and the longest custom range. */
export const MIN_SPAN_MS = 1000;
export const MAX_SPAN_MS = 366 * 24 * 3600_000;

/** The window [from, to] (epoch ms) a view shows at time now. */
export function viewWindow(view: View, rangeMs: number, now: number): [number, number] {
  return view.kind === 'live' ? [now - rangeMs, now] : [view.from, view.to];
}

/** A zoom to [from, to], in either order, at least MIN_SPAN_MS wide; null for a degenerate selection. */
export function zoomView(a: number, b: number): View | null {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  const from = Math.min(a, b);
  const to = Math.max(a, b);
  if (to - from < MIN_SPAN_MS) return null;
  return { kind: 'fixed', from, to };
}

/**
 * Moves the window by half its width (dir -1: back in time, +1: forward).
 * Forward stops at now: the window ends at now but stays fixed (Reset
 * zoom returns to live).
 */
export function panView(view: View, rangeMs: number, now: number, dir: -1 | 1): View {
  const [from, to] = viewWindow(view, rangeMs, now);
  return shiftView(view, rangeMs, now, (dir * (to - from)) / 2);
}

/** Moves the window by ms (negative: back in time); forward it stops at now. */
export function shiftView(view: View, rangeMs: number, now: number, ms: number): View {
  const [from, to] = viewWindow(view, rangeMs, now);
  const shift = Math.min(ms, Math.max(0, now - to));
  return { kind: 'fixed', from: from + shift, to: to + shift };
}

/** epoch ms to the value of an <input type="datetime-local"> (local time, to the second). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Reads an <input type="datetime-local"> value (local time) as epoch ms; NaN when it is not one. */
export function fromLocalInput(s: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(s.trim());
  if (!m) return NaN;
  const [y, mo, d, h, mi, sec, frac] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const date = new Date(y, mo - 1, d, h, mi, sec, frac ? Number(m[7].padEnd(3, '0')) : 0);
  // new Date rolls 31 February over into March: refuse what it rolled.
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d) return NaN;
  return date.getTime();
}

/** A custom range from the two inputs, or the sentence that says what is wrong with it. */
export function parseCustomRange(fromText: string, toText: string, now: number): { view: View } | { error: string; field: 'from' | 'to' } {
  if (!fromText.trim()) return { error: 'Enter the start of the range.', field: 'from' };
  const from = fromLocalInput(fromText);
  if (Number.isNaN(from)) return { error: 'The start is not a date and time.', field: 'from' };
  const to = toText.trim() ? fromLocalInput(toText) : now;
  if (Number.isNaN(to)) return { error: 'The end is not a date and time.', field: 'to' };
  if (from >= now) return { error: 'The start must be in the past.', field: 'from' };
  if (to <= from) return { error: 'The end must be after the start.', field: 'to' };
  if (to - from < MIN_SPAN_MS) return { error: 'The range must be at least a second long.', field: 'to' };
  if (to - from > MAX_SPAN_MS) return { error: 'The range can be at most 366 days long.', field: 'from' };
  return { view: { kind: 'fixed', from, to: Math.min(to, now) } };
}

// ---- Resolution -------------------------------------------------------------

/** A window up to this long is drawn from raw readings, as the presets up to 1 h are. */
export const RAW_SPAN_MS = 3600_000;
/** About this many buckets at most for a window: enough for a full-width chart. */
const TARGET_BUCKETS = 1500;
/** Bucket sizes the server accepts (Go durations, at least 1 s), finest first. */
const BUCKETS: { bucket: string; ms: number }[] = [
  { bucket: '2s', ms: 2_000 },
  { bucket: '5s', ms: 5_000 },
  { bucket: '10s', ms: 10_000 },
  { bucket: '30s', ms: 30_000 },
  { bucket: '1m', ms: 60_000 },
  { bucket: '5m', ms: 300_000 },
  { bucket: '10m', ms: 600_000 },
  { bucket: '30m', ms: 1_800_000 },
  { bucket: '1h', ms: 3_600_000 },
  { bucket: '6h', ms: 21_600_000 },
  { bucket: '24h', ms: 86_400_000 },
];

/** Raw readings for a short window; otherwise the finest bucket that keeps the count near TARGET_BUCKETS. */
export function resolutionFor(spanMs: number): { bucket?: string; bucketMs?: number } {
  if (spanMs <= RAW_SPAN_MS) return {};
  const b = BUCKETS.find((x) => spanMs / x.ms <= TARGET_BUCKETS) ?? BUCKETS[BUCKETS.length - 1];
  return { bucket: b.bucket, bucketMs: b.ms };
}

/**
 * Whether a window must be fetched, or the series already loaded can show
 * it: it can when it covers the window (up to now when live readings have
 * been appended since) in raw readings, the finest there are, or in
 * buckets no coarser than the window asks for.
 */
export function needsFetch(
  loaded: { from: number; to: number; bucketMs?: number; followsNow: boolean },
  from: number,
  to: number,
  now: number,
): boolean {
  const coveredTo = loaded.followsNow ? Math.max(loaded.to, now) : loaded.to;
  if (from < loaded.from || to > coveredTo) return true;
  if (!loaded.bucketMs) return false;
  const want = resolutionFor(to - from).bucketMs;
  return want === undefined || want < loaded.bucketMs;
}

/** The indexes [i0, i1) of the sorted times t with from <= t <= to. */
export function windowSlice(t: ArrayLike<number>, from: number, to: number): [number, number] {
  return [lowerBound(t, from), upperBound(t, to)];
}

// ---- Markers ---------------------------------------------------------------

export interface ChartEvent {
  /** epoch ms */
  t: number;
  kind: 'alert' | 'command';
  /** One line for a tooltip and the text alternative. */
  label: string;
  severity?: string;
  id: string;
}

/**
 * The alerts of one sensor metric as markers at the time they opened
 * (and a second one when they resolved). The newest version of each alert
 * wins, whether it came from REST or from the live store.
 */
export function alertEvents(alerts: readonly Alert[], sensorId: string, metric: string): ChartEvent[] {
  const byId = new Map<string, Alert>();
  for (const a of alerts) {
    if (a.sensor_id !== sensorId || a.metric !== metric) continue;
    const prev = byId.get(String(a.id));
    if (!prev || parseTs(a.updated_at) >= parseTs(prev.updated_at)) byId.set(String(a.id), a);
  }
  const out: ChartEvent[] = [];
  for (const a of byId.values()) {
    const opened = parseTs(a.opened_at);
    if (Number.isFinite(opened)) {
      const value = a.value === null || a.value === undefined ? '' : ` (value ${a.value})`;
      out.push({
        t: opened,
        kind: 'alert',
        severity: a.severity,
        id: `alert-${a.id}`,
        label: `${cap(a.severity)} ${a.kind} alert #${a.id} opened${value}, now ${a.state}`,
      });
    }
    const resolved = parseTs(a.resolved_at ?? undefined);
    if (a.state === 'resolved' && Number.isFinite(resolved)) {
      out.push({ t: resolved, kind: 'alert', severity: 'resolved', id: `alert-${a.id}-resolved`, label: `Alert #${a.id} resolved` });
    }
  }
  return out.sort((x, y) => x.t - y.t);
}

/** Commands sent to the sensor's device, at the time they were issued. */
export function commandEvents(records: readonly CommandRecord[]): ChartEvent[] {
  return records
    .map((c) => ({
      t: parseTs(c.issued_at),
      kind: 'command' as const,
      id: `command-${c.command_id ?? c.issued_at}`,
      label: `Command ${c.action} by ${c.issued_by}: ${c.status}`,
    }))
    .filter((e) => Number.isFinite(e.t))
    .sort((x, y) => x.t - y.t);
}

export interface MarkerGroup {
  /** CSS pixels from the left of the plot area. */
  x: number;
  events: ChartEvent[];
}

/**
 * Places markers on a time axis [from, to] (epoch ms) widthPx wide: events
 * outside are left out, and events closer than minGapPx share one marker
 * (its tooltip lists them all) so that a burst stays readable.
 */
export function placeMarkers(events: readonly ChartEvent[], from: number, to: number, widthPx: number, minGapPx = 8): MarkerGroup[] {
  if (!(to > from) || widthPx <= 0) return [];
  const inRange = events.filter((e) => e.t >= from && e.t <= to).sort((a, b) => a.t - b.t);
  const out: MarkerGroup[] = [];
  for (const e of inRange) {
    const x = ((e.t - from) / (to - from)) * widthPx;
    const last = out[out.length - 1];
    if (last && x - last.x < minGapPx) last.events.push(e);
    else out.push({ x, events: [e] });
  }
  return out;
}

function cap(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}
