// Chart data of the detail view: history over REST, in uPlot's column
// form, and the folding of live readings into it.

import type { Api } from '../common/api';
import { parseTs } from '../common/format';
import type { Bucket, Reading } from '../types';

export type RangeKey = '15m' | '1h' | '24h' | '7d' | '30d' | '1y';

export interface RangeDef {
  key: RangeKey;
  label: string;
  ms: number;
  /** Server-side downsampling for long ranges; raw readings otherwise. */
  bucket?: string;
  bucketMs?: number;
}

export const RANGES: RangeDef[] = [
  { key: '15m', label: '15 min', ms: 15 * 60_000 },
  { key: '1h', label: '1 h', ms: 60 * 60_000 },
  { key: '24h', label: '24 h', ms: 24 * 3600_000, bucket: '1m', bucketMs: 60_000 },
  { key: '7d', label: '7 d', ms: 7 * 24 * 3600_000, bucket: '10m', bucketMs: 600_000 },
  // Whole hours: the server answers these from the hourly rollups, which
  // are kept long after raw readings are dropped (docs/storage.md).
  { key: '30d', label: '30 d', ms: 30 * 24 * 3600_000, bucket: '1h', bucketMs: 3_600_000 },
  { key: '1y', label: '1 y', ms: 365 * 24 * 3600_000, bucket: '6h', bucketMs: 6 * 3_600_000 },
];

// The server caps limit at 10 000 readings and 5 000 buckets, newest first.
const RAW_LIMIT = 10_000;
const BUCKET_LIMIT = 5_000;

/** Chart data in uPlot's column form, times in seconds. Raw: [t, v]; buckets: [t, avg, min, max]. */
export interface Series {
  bucketMs?: number;
  t: number[];
  cols: number[][];
  /** Per-bucket reading counts, to keep the average right while live points arrive. */
  counts: number[];
}

export async function fetchSeries(
  api: Api,
  sensorId: string,
  metric: string,
  def: RangeDef,
): Promise<Series> {
  const now = Date.now();
  // A minute past now: readings of a device whose clock runs a little ahead.
  return fetchWindow(api, sensorId, metric, now - def.ms, now + 60_000, def);
}

/**
 * Loads one series over [from, to] (epoch ms): raw readings, or buckets
 * when res names one (the server takes any duration of at least 1 s).
 */
export async function fetchWindow(
  api: Api,
  sensorId: string,
  metric: string,
  from: number,
  to: number,
  res: { bucket?: string; bucketMs?: number },
): Promise<Series> {
  const params = { metric, from: new Date(from).toISOString(), to: new Date(to).toISOString() };
  const path = `/api/sensors/${encodeURIComponent(sensorId)}/readings`;
  if (res.bucket) {
    let bucket = res.bucket;
    let bucketMs = res.bucketMs!;
    let body: { buckets?: Bucket[] };
    try {
      body = await api.get(path, { ...params, bucket, limit: BUCKET_LIMIT });
    } catch (err) {
      // A server that only knows 1-minute buckets: 7 days of them is still
      // fine for uPlot (10 080 points); longer ranges would pass the
      // server's limit of buckets.
      if (bucket === '1m' || to - from > 7 * 24 * 3600_000) throw err;
      bucket = '1m';
      bucketMs = 60_000;
      body = await api.get(path, { ...params, bucket, limit: BUCKET_LIMIT });
    }
    const rows = (body.buckets ?? [])
      .map((b) => ({ t: parseTs(b.ts), b }))
      .filter((x) => Number.isFinite(x.t))
      .sort((a, b) => a.t - b.t);
    return {
      bucketMs,
      t: rows.map((x) => x.t / 1000),
      cols: [rows.map((x) => x.b.avg), rows.map((x) => x.b.min), rows.map((x) => x.b.max)],
      counts: rows.map((x) => x.b.count),
    };
  }
  const body = await api.get<{ readings?: Reading[] }>(path, { ...params, limit: RAW_LIMIT });
  const rows = (body.readings ?? [])
    .map((r) => ({ t: parseTs(r.ts), v: r.value }))
    .filter((x) => Number.isFinite(x.t))
    .sort((a, b) => a.t - b.t);
  return { t: rows.map((x) => x.t / 1000), cols: [rows.map((x) => x.v)], counts: [] };
}

/** Adds a live reading: a new raw point, or folded into the current bucket. */
export function appendPoint(s: Series, tMs: number, v: number, rangeMs: number): void {
  const t = tMs / 1000;
  const n = s.t.length;
  if (s.bucketMs) {
    const bt = (Math.floor(tMs / s.bucketMs) * s.bucketMs) / 1000;
    if (n > 0 && s.t[n - 1] === bt) {
      const c = s.counts[n - 1] || 1;
      s.cols[0][n - 1] = (s.cols[0][n - 1] * c + v) / (c + 1);
      s.cols[1][n - 1] = Math.min(s.cols[1][n - 1], v);
      s.cols[2][n - 1] = Math.max(s.cols[2][n - 1], v);
      s.counts[n - 1] = c + 1;
      return;
    }
    if (n > 0 && bt < s.t[n - 1]) return;
    s.t.push(bt);
    s.cols[0].push(v);
    s.cols[1].push(v);
    s.cols[2].push(v);
    s.counts.push(1);
  } else {
    if (n > 0 && t <= s.t[n - 1]) {
      // Out of order or seen before: a point is identified by its time,
      // so it replaces the one held at that time or goes in its place.
      insertRaw(s, t, v);
      return;
    }
    s.t.push(t);
    s.cols[0].push(v);
  }
  // Drop what scrolled out of the range so memory stays bounded.
  const cutoff = t - rangeMs / 1000;
  let drop = 0;
  while (drop < s.t.length && s.t[drop] < cutoff) drop++;
  if (drop > 64) {
    s.t.splice(0, drop);
    for (const c of s.cols) c.splice(0, drop);
    if (s.counts.length) s.counts.splice(0, drop);
  }
}

/** Index of the first time >= t in the sorted times. */
export function lowerBound(ts: ArrayLike<number>, t: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first time > t in the sorted times. */
export function upperBound(ts: ArrayLike<number>, t: number): number {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ts[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Puts a raw point (t in seconds) in time order, replacing one at the same time. */
function insertRaw(s: Series, t: number, v: number): void {
  const i = lowerBound(s.t, t);
  if (s.t[i] === t) {
    s.cols[0][i] = v;
    return;
  }
  s.t.splice(i, 0, t);
  s.cols[0].splice(i, 0, v);
}

/**
 * Merges stored readings (epoch ms, e.g. a refetched thinned span) into a
 * raw series without duplicates: a point at a time already held replaces
 * it. Returns false for a bucketed series, which needs a reload instead
 * (a bucket cannot tell a reading it already counts from a new one).
 */
export function mergePoints(s: Series, points: readonly { t: number; v: number }[]): boolean {
  if (s.bucketMs) return false;
  for (const p of points) {
    const t = p.t / 1000;
    const n = s.t.length;
    if (n === 0 || t > s.t[n - 1]) {
      s.t.push(t);
      s.cols[0].push(p.v);
    } else {
      insertRaw(s, t, p.v);
    }
  }
  return true;
}

/**
 * Loads every stored reading of one series with from <= ts <= to (epoch
 * ms), oldest first, paging backwards when the span holds more than one
 * page.
 */
export async function fetchSpan(
  api: Api,
  sensorId: string,
  metric: string,
  from: number,
  to: number,
): Promise<{ t: number; v: number }[]> {
  const path = `/api/sensors/${encodeURIComponent(sensorId)}/readings`;
  const out: { t: number; v: number }[] = [];
  let upper = to;
  for (let page = 0; page < 100; page++) {
    // The server wants from < to: a span of one instant is widened by 1 ms.
    const params = { metric, from: new Date(from).toISOString(), to: new Date(Math.max(upper, from + 1)).toISOString(), limit: RAW_LIMIT };
    const res = await api.get<{ readings?: Reading[] }>(path, params);
    const rows = (res.readings ?? [])
      .map((r) => ({ t: parseTs(r.ts), v: r.value }))
      .filter((x) => Number.isFinite(x.t) && x.t >= from && x.t <= to);
    out.push(...rows);
    if ((res.readings ?? []).length < RAW_LIMIT || rows.length === 0) break;
    const oldest = Math.min(...rows.map((x) => x.t));
    if (oldest <= from) break;
    upper = oldest - 1;
  }
  const byT = new Map<number, number>();
  for (const p of out) byT.set(p.t, p.v);
  return [...byT.entries()].sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t, v }));
}

/**
 * A y range that shows normal variation despite spikes: the 2nd to 98th
 * percentile of the finite values, widened by 10% each side, and widened to
 * the true min/max when those are not far out (within half the robust span).
 * clipped tells whether some values lie outside (draw them at the edge,
 * marked). Null for no values.
 */
export function robustRange(values: ArrayLike<number>): { lo: number; hi: number; clipped: boolean } | null {
  const v: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) v.push(values[i]);
  if (v.length === 0) return null;
  v.sort((a, b) => a - b);
  const min = v[0];
  const max = v[v.length - 1];
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.round(p * (v.length - 1))))];
  let lo = q(0.02);
  let hi = q(0.98);
  const span = hi - lo || Math.abs(hi) * 0.1 || 1;
  lo -= span * 0.1;
  hi += span * 0.1;
  if (min >= lo - span * 0.5) lo = Math.min(lo, min);
  if (max <= hi + span * 0.5) hi = Math.max(hi, max);
  return { lo, hi, clipped: min < lo || max > hi };
}

/** A sentence for the chart's text alternative: how many points, low, high and latest. */
export function summarize(cols: number[][], unit: string, fmt: (v: number) => string): string {
  const vals = cols[0] ?? [];
  let lo = Infinity;
  let hi = -Infinity;
  let latest: number | undefined;
  for (const c of cols) for (const x of c) if (Number.isFinite(x)) ((lo = Math.min(lo, x)), (hi = Math.max(hi, x)));
  for (let i = vals.length - 1; i >= 0; i--) if (Number.isFinite(vals[i])) ((latest = vals[i]), (i = -1));
  if (latest === undefined) return 'No readings in this range.';
  const u = unit ? ' ' + unit : '';
  return `Lowest ${fmt(lo)}${u}, highest ${fmt(hi)}${u}, latest ${fmt(latest)}${u}.`;
}
