import { describe, expect, it } from 'vitest';
import { FrameBatcher } from '../common/frame';
import { Api, Session } from '../common/api';
import { Ring, SensorStore, addSpan, sensorKey } from './store';
import { appendPoint, fetchSpan, mergePoints, type Series } from './series';

describe('Ring', () => {
  it('keeps the newest points in order when full', () => {
    const r = new Ring(3);
    for (let i = 1; i <= 5; i++) r.push(i, i * 10);
    expect(r.length).toBe(3);
    expect([0, 1, 2].map((i) => r.at(i))).toEqual([
      { t: 3, v: 30 },
      { t: 4, v: 40 },
      { t: 5, v: 50 },
    ]);
  });

  it('ignores out-of-order points and overwrites same-time points', () => {
    const r = new Ring(4);
    r.push(10, 1);
    r.push(5, 2);
    r.push(10, 3);
    expect(r.length).toBe(1);
    expect(r.at(0)).toEqual({ t: 10, v: 3 });
  });
});

describe('SensorStore', () => {
  const noFrames = new FrameBatcher(() => {});

  it('applies readings and keeps keys in natural order', () => {
    const s = new SensorStore(noFrames);
    for (const id of ['s-10', 's-2', 's-1']) {
      s.applyReading({ sensor_id: id, metric: 'temperature', value: 1, unit: '°C', ts: '2026-01-01T00:00:00Z' });
    }
    expect(s.keys.map((k) => s.get(k)!.sensorId)).toEqual(['s-1', 's-2', 's-10']);
  });

  it('does not move back to an older value', () => {
    const s = new SensorStore(noFrames);
    s.applyReading({ sensor_id: 'a', metric: 'm', value: 2, ts: '2026-01-01T00:00:02Z' });
    s.applyReading({ sensor_id: 'a', metric: 'm', value: 1, ts: '2026-01-01T00:00:01Z' });
    s.applySnapshot([
      { sensor_id: 'a', metric: 'm', last_value: 0, last_seen: '2026-01-01T00:00:00Z', first_seen: '2026-01-01T00:00:00Z' },
    ]);
    expect(s.get(sensorKey('a', 'm'))!.value).toBe(2);
  });

  it('ignores malformed readings', () => {
    const s = new SensorStore(noFrames);
    s.applyReading({ sensor_id: 'a', metric: 'm', value: 'x' as unknown as number, ts: '2026-01-01T00:00:00Z' });
    s.applyReading({ sensor_id: 'a', metric: 'm', value: 1, ts: 'garbage' });
    expect(s.size).toBe(0);
  });
});

describe('appendPoint', () => {
  it('appends raw points and drops what scrolled out of range', () => {
    const s: Series = { t: [], cols: [[]], counts: [] };
    for (let i = 0; i < 200; i++) appendPoint(s, i * 1000, i, 100_000);
    expect(s.t[s.t.length - 1]).toBe(199);
    expect(s.t[0]).toBeGreaterThanOrEqual(199 - 100 - 64);
    expect(s.t.length).toBe(s.cols[0].length);
  });

  it('folds live readings into the current bucket', () => {
    const s: Series = { bucketMs: 60_000, t: [0], cols: [[10], [10], [10]], counts: [1] };
    appendPoint(s, 30_000, 20, 86_400_000);
    expect(s.t).toEqual([0]);
    expect(s.cols.map((c) => c[0])).toEqual([15, 10, 20]);
    appendPoint(s, 61_000, 5, 86_400_000);
    expect(s.t).toEqual([0, 60]);
    expect(s.cols.map((c) => c[1])).toEqual([5, 5, 5]);
  });
});

describe('resume cursor and de-duplication', () => {
  const noFrames = new FrameBatcher(() => {});
  const r = (ts: string, value: number, sensor = 'a') => ({ sensor_id: sensor, metric: 'm', value, ts });

  it('tracks the newest reading ts of any series, live or over REST', () => {
    const s = new SensorStore(noFrames);
    expect(s.since).toBeUndefined();
    s.applyReading(r('2026-01-01T00:00:02.500Z', 1, 'a'));
    s.applyReading(r('2026-01-01T00:00:01Z', 1, 'b'));
    expect(s.since).toBe('2026-01-01T00:00:02.500Z');
    s.applySnapshot([{ sensor_id: 'c', metric: 'm', last_value: 0, last_seen: '2026-01-01T00:00:03Z', first_seen: '2026-01-01T00:00:00Z' }]);
    expect(s.since).toBe('2026-01-01T00:00:03.000Z');
  });

  it('does not apply a reading it holds again, nor tell live listeners', () => {
    const s = new SensorStore(noFrames);
    const k = sensorKey('a', 'm');
    let live = 0;
    s.onLive(k, () => live++);
    s.applyReading(r('2026-01-01T00:00:01Z', 1));
    s.applyReading(r('2026-01-01T00:00:02Z', 2));
    const v = s.get(k)!.version;
    s.applyReading(r('2026-01-01T00:00:01Z', 1));
    s.applyReading(r('2026-01-01T00:00:02Z', 2));
    expect(live).toBe(2);
    expect(s.get(k)!.version).toBe(v);
    expect(s.get(k)!.spark.length).toBe(2);
  });

  it('puts a late reading in its place without moving the tile back', () => {
    const s = new SensorStore(noFrames);
    const k = sensorKey('a', 'm');
    s.applyReading(r('2026-01-01T00:00:01Z', 1));
    s.applyReading(r('2026-01-01T00:00:03Z', 3));
    s.applyReading(r('2026-01-01T00:00:02Z', 2));
    const st = s.get(k)!;
    expect(st.value).toBe(3);
    expect([0, 1, 2].map((i) => st.spark.valueAt(i))).toEqual([1, 2, 3]);
  });

  it('finds points in a ring by time', () => {
    const ring = new Ring(4);
    for (let i = 1; i <= 6; i++) ring.push(i * 10, i);
    expect(ring.indexOf(30)).toBe(0);
    expect(ring.indexOf(60)).toBe(3);
    expect(ring.indexOf(20)).toBe(-1);
    expect(ring.indexOf(35)).toBe(-1);
  });
});

describe('gap spans', () => {
  it('joins overlapping spans and keeps them sorted and bounded', () => {
    let spans = addSpan([], { from: 10, to: 20 });
    spans = addSpan(spans, { from: 40, to: 50 });
    spans = addSpan(spans, { from: 15, to: 30 });
    expect(spans).toEqual([
      { from: 10, to: 30 },
      { from: 40, to: 50 },
    ]);
    for (let i = 0; i < 40; i++) spans = addSpan(spans, { from: 100 + i * 10, to: 101 + i * 10 });
    expect(spans.length).toBeLessThanOrEqual(16);
    expect(spans[0].from).toBe(10);
    expect(spans[spans.length - 1].to).toBe(491);
  });

  it('keeps a span whose refetch failed for the next time', async () => {
    let fail = true;
    const s = new SensorStore(new FrameBatcher(() => {}), async () => {
      if (fail) throw new Error('down');
      return [{ t: 1500, v: 1 }];
    });
    s.applyReading({ sensor_id: 'a', metric: 'm', value: 2, ts: new Date(3000).toISOString() });
    s.applyGap({ thinned: 1, series: [{ sensor_id: 'a', metric: 'm', from: new Date(1000).toISOString(), to: new Date(2000).toISOString(), thinned: 1 }] });
    const k = sensorKey('a', 'm');
    await s.fillGaps(k);
    expect(s.gapsOf(k)).toEqual([{ from: 1000, to: 2000 }]);
    fail = false;
    await s.fillGaps(k);
    expect(s.gapsOf(k)).toEqual([]);
    expect(s.get(k)!.spark.length).toBe(2);
    expect(s.get(k)!.value).toBe(2);
  });
});

describe('mergePoints', () => {
  it('merges stored points into a raw series in time order, once each', () => {
    const s: Series = { t: [1, 5], cols: [[10, 50]], counts: [] };
    expect(
      mergePoints(s, [
        { t: 2000, v: 20 },
        { t: 3000, v: 30 },
        { t: 5000, v: 51 },
        { t: 6000, v: 60 },
      ]),
    ).toBe(true);
    expect(s.t).toEqual([1, 2, 3, 5, 6]);
    expect(s.cols[0]).toEqual([10, 20, 30, 51, 60]);
    appendPoint(s, 4000, 40, 3600_000);
    appendPoint(s, 3000, 31, 3600_000);
    expect(s.t).toEqual([1, 2, 3, 4, 5, 6]);
    expect(s.cols[0]).toEqual([10, 20, 31, 40, 51, 60]);
  });

  it('asks for a reload of a bucketed series', () => {
    const s: Series = { bucketMs: 60_000, t: [0], cols: [[1], [1], [1]], counts: [1] };
    expect(mergePoints(s, [{ t: 1000, v: 2 }])).toBe(false);
    expect(s.counts).toEqual([1]);
  });
});

describe('fetchSpan', () => {
  it('pages backwards through a span larger than one page, widening a one-instant span', async () => {
    const stored = Array.from({ length: 25_000 }, (_, i) => ({ sensor_id: 'a', metric: 'm', value: i, ts: new Date(1_000_000 + i).toISOString() }));
    const urls: URL[] = [];
    const fakeFetch = (async (url: string) => {
      const u = new URL(url, 'http://x');
      urls.push(u);
      const from = Date.parse(u.searchParams.get('from')!);
      const to = Date.parse(u.searchParams.get('to')!);
      const limit = Number(u.searchParams.get('limit'));
      const rows = stored
        .filter((r) => Date.parse(r.ts) >= from && Date.parse(r.ts) <= to)
        .reverse()
        .slice(0, limit);
      return new Response(JSON.stringify({ readings: rows }), { status: 200 });
    }) as typeof fetch;
    const api = new Api(new Session(undefined), fakeFetch);
    const pts = await fetchSpan(api, 'a', 'm', 1_000_100, 1_024_999);
    expect(pts.length).toBe(24_900);
    expect(pts[0]).toEqual({ t: 1_000_100, v: 100 });
    expect(pts[pts.length - 1]).toEqual({ t: 1_024_999, v: 24_999 });
    expect(urls).toHaveLength(3);
    const one = await fetchSpan(api, 'a', 'm', 1_000_005, 1_000_005);
    expect(one).toEqual([{ t: 1_000_005, v: 5 }]);
    const last = urls[urls.length - 1];
    expect(Date.parse(last.searchParams.get('to')!)).toBeGreaterThan(Date.parse(last.searchParams.get('from')!));
  });
});
