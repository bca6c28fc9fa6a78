// The live state of every sensor metric: latest value, a short history for
// the sparkline, and how often it usually reports (to tell when it is
// stale). Readings update it immediately; tiles hear about it once per frame.

import { FrameBatcher, KeyedObservable, Observable } from '../common/frame';
import { naturalCompare, parseTs } from '../common/format';
import type { Reading, Sensor } from '../types';

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

  constructor(batcher: FrameBatcher) {
    this.perKey = new KeyedObservable(batcher);
    this.keysChanged = new Observable(batcher);
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
    if (typeof r?.sensor_id !== 'string' || typeof r.metric !== 'string' || typeof r.value !== 'number') return;
    const t = parseTs(r.ts);
    if (!Number.isFinite(t)) return;
    const s = this.ensure(r.sensor_id, r.metric, r.unit);
    if (t >= s.ts) {
      if (s.ts > 0) {
        const dt = t - s.ts;
        if (dt > 0) s.intervalMs = s.intervalMs ? s.intervalMs * 0.8 + dt * 0.2 : dt;
      }
      s.value = r.value;
      s.ts = t;
    }
    s.spark.push(t, r.value);
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
    const merged = new Map<number, number>();
    for (let i = 0; i < s.spark.length; i++) merged.set(s.spark.timeAt(i), s.spark.valueAt(i));
    for (const p of points) merged.set(p.t, p.v);
    const sorted = [...merged.entries()].sort((a, b) => a[0] - b[0]);
    s.spark.clear();
    for (const [t, v] of sorted.slice(-s.spark.capacity)) s.spark.push(t, v);
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

  /**
   * Calls fn synchronously for every reading of key (the detail chart
   * appends points itself and renders once per frame).
   */
  onLive(key: string, fn: LiveListener): () => void {
    let set = this.live.get(key);
    if (!set) {
      set = new Set();
      this.live.set(key, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.live.delete(key);
    };
  }
}
