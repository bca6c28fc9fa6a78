// The live state of every sensor metric: latest value, a short history for
// the sparkline, and how often it usually reports (to tell when it is
// stale). Readings update it immediately; tiles hear about it once per frame.
// It also keeps the resume cursor of the readings stream (the newest
// reading ts seen) and the spans the server thinned (`gap`), which it
// refetches over REST for the series on screen.

import { FrameBatcher, KeyedObservable, Observable } from '../common/frame';
import { naturalCompare, parseTs } from '../common/format';
import type { GapData, Reading, Sensor } from '../types';

/** Sparklines show this much history. */
export const SPARK_WINDOW_MS = 5 * 60_000;
const SPARK_CAPACITY = 512;

/** A fixed-size ring of (time, value) points, oldest overwritten first. */
export class Ring {
  readonly times: Float64Array;
  readonly values: Float64Array;
  private start = 0;
  length = 0;

  constructor(capacity: number) {
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
  }

  get capacity(): number {
    return this.times.length;
  }

  /** Appends a point; a point older than the newest is ignored (out of order). */
  push(t: number, v: number): void {
    if (this.length > 0) {
      const last = this.at(this.length - 1);
      if (t < last.t) return;
      if (t === last.t) {
        this.values[(this.start + this.length - 1) % this.capacity] = v;
        return;
      }
    }
    const cap = this.capacity;
    if (this.length < cap) {
      const i = (this.start + this.length) % cap;
      this.times[i] = t;
      this.values[i] = v;
      this.length++;
    } else {
      this.times[this.start] = t;
      this.values[this.start] = v;
      this.start = (this.start + 1) % cap;
    }
  }

  /** The index of the point at time t, or -1 (binary search: times are sorted). */
  indexOf(t: number): number {
    let lo = 0;
    let hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const mt = this.timeAt(mid);
      if (mt === t) return mid;
      if (mt < t) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  at(i: number): { t: number; v: number } {
    const j = (this.start + i) % this.capacity;
    return { t: this.times[j], v: this.values[j] };
  }

  timeAt(i: number): number {
    return this.times[(this.start + i) % this.capacity];
  }

  valueAt(i: number): number {
    return this.values[(this.start + i) % this.capacity];
  }

  clear(): void {
    this.start = 0;
    this.length = 0;
  }
}

export interface SensorState {
  readonly key: string;
  readonly sensorId: string;
  readonly metric: string;
  unit: string;
  value: number;
  /** Epoch ms of the latest reading. */
  ts: number;
  /** Exponentially weighted mean interval between readings, ms (0 = unknown). */
  intervalMs: number;
  readonly spark: Ring;
  /** Incremented on every change of value or sparkline. */
  version: number;
}

export function sensorKey(sensorId: string, metric: string): string {
  return sensorId + '\u0000' + metric;
}

/** A tile goes grey when its sensor has been silent this long. */
export function staleAfterMs(s: SensorState): number {
  return Math.max(15_000, 5 * (s.intervalMs || 0));
}

type LiveListener = (r: Reading, t: number) => void;
type HistoryListener = (points: readonly Point[]) => void;

export interface Point {
  t: number;
  v: number;
}

/** A thinned span of one series, epoch ms, both ends included. */
export interface Span {
  from: number;
  to: number;
}

/** Fetches the stored readings of one series with from <= ts <= to, oldest first. */
export type SpanFetcher = (sensorId: string, metric: string, from: number, to: number) => Promise<Point[]>;

/** Spans kept per series before the oldest ones are merged together. */
const MAX_SPANS = 16;

export class SensorStore {
  private readonly byKey = new Map<string, SensorState>();
  private sortedKeys: string[] = [];
  private keysDirty = false;
  private sensorCountCache = -1;
  /** Tiles listen to their own key. */
  readonly perKey: KeyedObservable<string>;
  /** The grid listens to the set of keys (a new sensor appeared). */
  readonly keysChanged: Observable;
  private readonly live = new Map<string, Set<LiveListener>>();
  private readonly history = new Map<string, Set<HistoryListener>>();
  private readonly gaps = new Map<string, Span[]>();
  private readonly filling = new Set<string>();
  private readonly fetchSpan: SpanFetcher | undefined;
  /**
   * The newest reading ts seen, epoch ms (0: none yet), live, replayed or
   * over REST: the resume cursor of the readings stream.
   */
  latestTs = 0;
  /** The highest commit batch (seq) of a reading seen on /ws (0: none). */
  latestSeq = 0;

  constructor(batcher: FrameBatcher, fetchSpan?: SpanFetcher) {
    this.perKey = new KeyedObservable(batcher);
    this.keysChanged = new Observable(batcher);
    this.fetchSpan = fetchSpan;
  }

  /** The resume cursor: `since` of the readings stream, or undefined before any reading. */
  get since(): string | undefined {
    return this.latestTs > 0 ? new Date(this.latestTs).toISOString() : undefined;
  }

  private seen(t: number): void {
    if (t > this.latestTs) this.latestTs = t;
  }

  /** All keys in natural order of sensor id then metric; sorted lazily, once per change. */
  get keys(): readonly string[] {
    if (this.keysDirty) {
      this.keysDirty = false;
      this.sortedKeys = [...this.byKey.values()]
        .sort((a, b) => naturalCompare(a.sensorId, b.sensorId) || naturalCompare(a.metric, b.metric))
        .map((x) => x.key);
    }
    return this.sortedKeys;
  }

  /** How many tiles (sensor metrics). */
  get size(): number {
    return this.byKey.size;
  }

  /** How many distinct sensors. */
  get sensorCount(): number {
    if (this.sensorCountCache < 0) this.sensorCountCache = new Set([...this.byKey.values()].map((s) => s.sensorId)).size;
    return this.sensorCountCache;
  }

  get(key: string): SensorState | undefined {
    return this.byKey.get(key);
  }

  private ensure(sensorId: string, metric: string, unit: string | undefined): SensorState {
    const key = sensorKey(sensorId, metric);
    let s = this.byKey.get(key);
    if (!s) {
      s = {
        key,
        sensorId,
        metric,
        unit: unit ?? '',
        value: NaN,
        ts: 0,
        intervalMs: 0,
        spark: new Ring(SPARK_CAPACITY),
        version: 0,
      };
      this.byKey.set(key, s);
      this.keysDirty = true;
      this.sensorCountCache = -1;
      this.keysChanged.changed();
    } else if (unit && !s.unit) {
      s.unit = unit;
    }
    return s;
  }

  /** Applies one live reading from /ws. */
  applyReading(r: Reading): void {
    if (r.seq !== undefined && r.seq > this.latestSeq) this.latestSeq = r.seq;
    if (typeof r?.sensor_id !== 'string' || typeof r.metric !== 'string' || typeof r.value !== 'number') return;
    const t = parseTs(r.ts);
    if (!Number.isFinite(t)) return;
    const s = this.ensure(r.sensor_id, r.metric, r.unit);
    this.seen(t);
    // A reading is identified by sensor, metric and ts: one already held
    // (replayed after a resume, or in a REST page) is not applied again.
    if (t <= s.ts && s.spark.indexOf(t) >= 0 && (t < s.ts || s.value === r.value)) return;
    if (t >= s.ts) {
      if (s.ts > 0) {
        const dt = t - s.ts;
        if (dt > 0) s.intervalMs = s.intervalMs ? s.intervalMs * 0.8 + dt * 0.2 : dt;
      }
      s.value = r.value;
      s.ts = t;
    }
    if (t >= s.ts || s.spark.length === 0) s.spark.push(t, r.value);
    else if (s.spark.length < s.spark.capacity || t > s.spark.timeAt(0)) this.mergeSpark(s, [{ t, v: r.value }]);
    s.version++;
    this.perKey.changed(s.key);
    const ls = this.live.get(s.key);
    if (ls) for (const fn of ls) fn(r, t);
  }

  /** Applies the REST snapshot (page load, reconnect): only ever moves a tile forward. */
  applySnapshot(sensors: Sensor[]): void {
    for (const x of sensors) {
      if (typeof x?.sensor_id !== 'string' || typeof x.metric !== 'string') continue;
      const s = this.ensure(x.sensor_id, x.metric, x.unit);
      const t = parseTs(x.last_seen);
      if (Number.isFinite(t)) this.seen(t);
      if (Number.isFinite(t) && t > s.ts) {
        s.value = x.last_value;
        s.ts = t;
        s.spark.push(t, x.last_value);
        s.version++;
        this.perKey.changed(s.key);
      }
    }
  }

  /** Fills a sparkline from stored readings (oldest first), e.g. after a reconnect gap. */
  backfill(key: string, points: { t: number; v: number }[]): void {
    const s = this.byKey.get(key);
    if (!s || points.length === 0) return;
    const sorted = this.mergeSpark(s, points);
    for (const p of points) this.seen(p.t);
    if (points.length >= 2 && !s.intervalMs) {
      s.intervalMs = (points[points.length - 1].t - points[0].t) / (points.length - 1);
    }
    const last = sorted[sorted.length - 1];
    if (last && last[0] > s.ts) {
      s.ts = last[0];
      s.value = last[1];
    }
    s.version++;
    this.perKey.changed(key);
  }

  /** Merges points into the sparkline by time (a point at a time already held replaces it). */
  private mergeSpark(s: SensorState, points: readonly Point[]): [number, number][] {
    const merged = new Map<number, number>();
    for (let i = 0; i < s.spark.length; i++) merged.set(s.spark.timeAt(i), s.spark.valueAt(i));
    for (const p of points) merged.set(p.t, p.v);
    const sorted = [...merged.entries()].sort((a, b) => a[0] - b[0]);
    s.spark.clear();
    for (const [t, v] of sorted.slice(-s.spark.capacity)) s.spark.push(t, v);
    return sorted;
  }

  /**
   * Calls fn synchronously for every reading of key (the detail chart
   * appends points itself and renders once per frame). A series with a
   * listener is on screen: its thinned spans are refetched.
   */
  onLive(key: string, fn: LiveListener): () => void {
    const off = listen(this.live, key, fn);
    if (this.gaps.has(key)) void this.fillGaps(key);
    return off;
  }

  /** Calls fn with the points of every refetched span of key (oldest first, merged into the sparkline already). */
  onHistory(key: string, fn: HistoryListener): () => void {
    return listen(this.history, key, fn);
  }

  // ---- thinning ----------------------------------------------------------

  /**
   * Records the spans a `gap` says were thinned, and refetches those of the
   * series on screen. The latest reading of each series follows the gap as
   * an ordinary reading and updates its tile.
   */
  applyGap(g: GapData): void {
    if (!g || !Array.isArray(g.series)) return;
    for (const x of g.series) {
      if (typeof x?.sensor_id !== 'string' || typeof x.metric !== 'string') continue;
      const from = parseTs(x.from);
      const to = parseTs(x.to);
      if (!Number.isFinite(from) || !Number.isFinite(to) || to < from) continue;
      const key = sensorKey(x.sensor_id, x.metric);
      this.ensure(x.sensor_id, x.metric, undefined);
      this.gaps.set(key, addSpan(this.gaps.get(key) ?? [], { from, to }));
      if (this.live.has(key)) void this.fillGaps(key);
    }
  }

  /** The thinned spans of key not refetched yet, oldest first. */
  gapsOf(key: string): readonly Span[] {
    return this.gaps.get(key) ?? [];
  }

  /**
   * Refetches the thinned spans of key one after the other and merges the
   * points. One run per key at a time; a span that fails to load stays
   * recorded for the next time the series is on screen.
   */
  async fillGaps(key: string): Promise<void> {
    const s = this.byKey.get(key);
    if (!s || !this.fetchSpan || this.filling.has(key)) return;
    this.filling.add(key);
    try {
      for (;;) {
        const spans = this.gaps.get(key);
        const span = spans?.[0];
        if (!span) break;
        const points = await this.fetchSpan(s.sensorId, s.metric, span.from, span.to);
        const rest = (this.gaps.get(key) ?? []).filter((x) => x !== span);
        if (rest.length) this.gaps.set(key, rest);
        else this.gaps.delete(key);
        if (points.length === 0) continue;
        this.backfill(key, points);
        const ls = this.history.get(key);
        if (ls) for (const fn of [...ls]) fn(points);
      }
    } catch {
      // Kept for the next time: the view shows what it has.
    } finally {
      this.filling.delete(key);
    }
  }
}

/** Adds fn to the listeners of key; the returned function removes it (and the key once empty). */
function listen<F>(map: Map<string, Set<F>>, key: string, fn: F): () => void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(fn);
  return () => {
    set.delete(fn);
    if (set.size === 0) map.delete(key);
  };
}

/** Adds span to a sorted list of spans, joining overlapping ones, at most MAX_SPANS kept. */
export function addSpan(spans: readonly Span[], span: Span): Span[] {
  const out: Span[] = [];
  let cur = { ...span };
  for (const x of spans) {
    if (x.to < cur.from || x.from > cur.to) out.push(x);
    else cur = { from: Math.min(x.from, cur.from), to: Math.max(x.to, cur.to) };
  }
  out.push(cur);
  out.sort((a, b) => a.from - b.from);
  while (out.length > MAX_SPANS) {
    const [a, b] = out.splice(0, 2);
    out.unshift({ from: a.from, to: b.to });
  }
  return out;
}
