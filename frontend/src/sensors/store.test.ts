import { describe, expect, it } from 'vitest';
import { FrameBatcher } from '../common/frame';
import { Ring, SensorStore, sensorKey } from './store';
import { appendPoint, type Series } from './series';

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
