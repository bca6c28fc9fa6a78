import { describe, expect, it } from 'vitest';
import type { Alert, CommandRecord } from '../types';
import {
  LIVE,
  alertEvents,
  alignSeries,
  clippedIndexes,
  commandEvents,
  fromLocalInput,
  gapThreshold,
  needsFetch,
  panView,
  parseCustomRange,
  placeMarkers,
  resolutionFor,
  shiftView,
  toLocalInput,
  viewWindow,
  windowSlice,
  withGaps,
  zoomView,
} from './chartModel';

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;

describe('gaps', () => {
  it('takes three times the median interval for raw readings, robust against the gaps themselves', () => {
    const t = [0, 1, 2, 3, 4, 100, 101, 102];
    expect(gapThreshold(t)).toBe(3);
    // Jitter of a fast sensor does not cut its line: at least median + 1 s.
    expect(gapThreshold([0, 0.1, 0.2, 0.3])).toBeCloseTo(1.1);
    expect(gapThreshold([0, 1])).toBe(Infinity);
  });

  it('takes a missing bucket as a gap', () => {
    expect(gapThreshold([0, 60, 180], 60)).toBe(90);
    const g = withGaps([0, 60, 180], [[1, 2, 3]], 90);
    expect(g.t).toEqual([0, 60, 120, 180]);
    expect(g.cols[0]).toEqual([1, 2, null, 3]);
    expect(g.gaps).toEqual([[60, 180]]);
  });

  it('inserts one null row per gap in every column and leaves the input alone', () => {
    const t = [0, 1, 2, 10, 11, 30];
    const cols = [
      [1, 2, 3, 4, 5, 6],
      [9, 9, 9, 9, 9, 9],
    ];
    const g = withGaps(t, cols, 3);
    expect(g.t).toEqual([0, 1, 2, 6, 10, 11, 20.5, 30]);
    expect(g.cols[0]).toEqual([1, 2, 3, null, 4, 5, null, 6]);
    expect(g.cols[1]).toEqual([9, 9, 9, null, 9, 9, null, 9]);
    expect(g.gaps).toEqual([
      [2, 10],
      [11, 30],
    ]);
    expect(t).toHaveLength(6);
    expect(withGaps(t, cols, Infinity).gaps).toEqual([]);
  });

  it('draws a gap where a live reading comes after a silence', () => {
    const t = [0, 1, 2, 3];
    t.push(60); // appended live after a minute of silence
    expect(withGaps(t, [[1, 1, 1, 1, 1]], gapThreshold(t)).gaps).toEqual([[3, 60]]);
  });

  it('lines up overlaid series: missing points undefined (spanned), gaps stay null (broken)', () => {
    const a = withGaps([0, 2, 10], [[1, 2, 3]], 5);
    const b = { t: [1, 2], cols: [[7, 8]] };
    const al = alignSeries([a, b]);
    expect(al.t).toEqual([0, 1, 2, 6, 10]);
    expect(al.cols[0]).toEqual([1, undefined, 2, null, 3]);
    expect(al.cols[1]).toEqual([undefined, 7, 8, undefined, undefined]);
  });

  it('finds the points cut by the y range', () => {
    expect(clippedIndexes([1, 500, null, 2, -40, undefined], 0, 10)).toEqual([1, 4]);
  });
});

describe('the window shown', () => {
  it('follows now when live and stays put when fixed', () => {
    expect(viewWindow(LIVE, 15 * MIN, NOW)).toEqual([NOW - 15 * MIN, NOW]);
    const v = zoomView(NOW - 5 * MIN, NOW - 8 * MIN)!;
    expect(viewWindow(v, 15 * MIN, NOW + 10 * MIN)).toEqual([NOW - 8 * MIN, NOW - 5 * MIN]);
  });

  it('refuses a zoom narrower than a second', () => {
    expect(zoomView(NOW, NOW + 999)).toBeNull();
    expect(zoomView(NaN, NOW)).toBeNull();
  });

  it('pans by half the window and not past now', () => {
    const back = panView(LIVE, 10 * MIN, NOW, -1);
    expect(back).toEqual({ kind: 'fixed', from: NOW - 15 * MIN, to: NOW - 5 * MIN });
    expect(panView(back, 10 * MIN, NOW, 1)).toEqual({ kind: 'fixed', from: NOW - 10 * MIN, to: NOW });
    // Forward from a window ending at now: nowhere to go.
    expect(panView(LIVE, 10 * MIN, NOW, 1)).toEqual({ kind: 'fixed', from: NOW - 10 * MIN, to: NOW });
    expect(shiftView(back, 10 * MIN, NOW, 2 * MIN)).toEqual({ kind: 'fixed', from: NOW - 13 * MIN, to: NOW - 3 * MIN });
    expect(shiftView(back, 10 * MIN, NOW, 60 * MIN)).toEqual({ kind: 'fixed', from: NOW - 10 * MIN, to: NOW });
  });

  it('reads and writes datetime-local values in local time', () => {
    const ms = new Date(2026, 2, 3, 4, 5, 6).getTime();
    expect(toLocalInput(ms)).toBe('2026-03-03T04:05:06');
    expect(fromLocalInput('2026-03-03T04:05:06')).toBe(ms);
    expect(fromLocalInput('2026-03-03T04:05')).toBe(ms - 6000);
    expect(fromLocalInput('2026-02-31T04:05')).toBeNaN();
    expect(fromLocalInput('yesterday')).toBeNaN();
  });

  it('validates a custom range with a reason and the field at fault', () => {
    const at = (ms: number) => toLocalInput(ms);
    expect(parseCustomRange('', '', NOW)).toEqual({ error: 'Enter the start of the range.', field: 'from' });
    expect(parseCustomRange('nonsense', '', NOW)).toMatchObject({ field: 'from' });
    expect(parseCustomRange(at(NOW - MIN), at(NOW - 2 * MIN), NOW)).toEqual({ error: 'The end must be after the start.', field: 'to' });
    expect(parseCustomRange(at(NOW + MIN), '', NOW)).toMatchObject({ error: 'The start must be in the past.' });
    expect(parseCustomRange(at(NOW - 400 * 24 * 60 * MIN), at(NOW - MIN), NOW)).toMatchObject({ field: 'from' });
    expect(parseCustomRange(at(NOW - 10 * MIN), at(NOW - 5 * MIN), NOW)).toEqual({ view: { kind: 'fixed', from: NOW - 10 * MIN, to: NOW - 5 * MIN } });
    // An empty end means now; an end in the future is cut at now.
    expect(parseCustomRange(at(NOW - 10 * MIN), '', NOW)).toEqual({ view: { kind: 'fixed', from: NOW - 10 * MIN, to: NOW } });
    expect(parseCustomRange(at(NOW - 10 * MIN), at(NOW + 10 * MIN), NOW)).toEqual({ view: { kind: 'fixed', from: NOW - 10 * MIN, to: NOW } });
  });

  it('draws short windows from raw readings and long ones in the finest bucket that fits', () => {
    expect(resolutionFor(60 * MIN)).toEqual({});
    expect(resolutionFor(24 * 60 * MIN)).toEqual({ bucket: '1m', bucketMs: 60_000 });
    expect(resolutionFor(7 * 60 * MIN)).toEqual({ bucket: '30s', bucketMs: 30_000 });
    expect(resolutionFor(7 * 24 * 60 * MIN)).toEqual({ bucket: '10m', bucketMs: 600_000 });
    expect(resolutionFor(10 * 365 * 24 * 60 * MIN).bucket).toBe('24h');
  });

  it('fetches only when what is loaded does not cover the window finely enough', () => {
    const raw = { from: NOW - 15 * MIN, to: NOW - MIN, followsNow: true };
    // Zoom inside raw data, up to now (live readings appended): no fetch.
    expect(needsFetch(raw, NOW - 10 * MIN, NOW, NOW)).toBe(false);
    expect(needsFetch({ ...raw, followsNow: false }, NOW - 10 * MIN, NOW, NOW)).toBe(true);
    // Panned before what is loaded.
    expect(needsFetch(raw, NOW - 20 * MIN, NOW - 10 * MIN, NOW)).toBe(true);
    const day = { from: NOW - 24 * 60 * MIN, to: NOW, bucketMs: 60_000, followsNow: true };
    // Zoomed into 7 h of a day in 1-minute buckets: 30-second ones are finer.
    expect(needsFetch(day, NOW - 7 * 60 * MIN, NOW, NOW)).toBe(true);
    // Zoomed into 20 h: 1-minute buckets are what it would fetch anyway.
    expect(needsFetch(day, NOW - 20 * 60 * MIN, NOW, NOW)).toBe(false);
    // Into an hour: raw readings.
    expect(needsFetch(day, NOW - 60 * MIN, NOW, NOW)).toBe(true);
  });

  it('slices the points of a window, ends included', () => {
    expect(windowSlice([1, 2, 3, 4, 5], 2, 4)).toEqual([1, 4]);
    expect(windowSlice([1, 2, 3], 10, 20)).toEqual([3, 3]);
  });
});

describe('markers', () => {
  const alert = (over: Partial<Alert>): Alert => ({
    id: 1,
    sensor_id: 's-1',
    metric: 'temperature',
    kind: 'threshold',
    severity: 'critical',
    value: 99,
    limit_or_score: 60,
    state: 'open',
    opened_at: new Date(NOW - 5 * MIN).toISOString(),
    updated_at: new Date(NOW - 5 * MIN).toISOString(),
    count: 1,
    acked_by: null,
    resolved_by: null,
    resolved_at: null,
    event_id: 1,
    ...over,
  });

  it('places alerts of this metric at their opening and resolution, newest version winning', () => {
    const ev = alertEvents(
      [
        alert({}),
        alert({ state: 'resolved', resolved_at: new Date(NOW - MIN).toISOString(), updated_at: new Date(NOW - MIN).toISOString() }),
        alert({ id: 2, metric: 'humidity' }),
        alert({ id: 3, sensor_id: 's-2' }),
      ],
      's-1',
      'temperature',
    );
    expect(ev.map((e) => [e.t, e.id])).toEqual([
      [NOW - 5 * MIN, 'alert-1'],
      [NOW - MIN, 'alert-1-resolved'],
    ]);
    expect(ev[0].label).toBe('Critical threshold alert #1 opened (value 99), now resolved');
  });

  it('places commands at the time they were issued', () => {
    const c: CommandRecord = {
      command_id: 'c1',
      sensor_id: 's-1',
      action: 'reboot',
      params: null,
      issued_by: 'alice',
      issued_at: new Date(NOW - 2 * MIN).toISOString(),
      status: 'success',
    };
    expect(commandEvents([c, { ...c, command_id: 'bad', issued_at: 'nope' }])).toEqual([
      { t: NOW - 2 * MIN, kind: 'command', id: 'command-c1', label: 'Command reboot by alice: success' },
    ]);
  });

  it('leaves out events outside the window and groups those too close to tell apart', () => {
    const ev = [NOW - 20 * MIN, NOW - 10 * MIN, NOW - 10 * MIN + 1000, NOW - 2 * MIN].map((t, i) => ({
      t,
      kind: 'alert' as const,
      id: String(i),
      label: String(i),
    }));
    const g = placeMarkers(ev, NOW - 15 * MIN, NOW, 900);
    expect(g.map((x) => [Math.round(x.x), x.events.map((e) => e.id)])).toEqual([
      [300, ['1', '2']],
      [780, ['3']],
    ]);
    expect(placeMarkers(ev, NOW, NOW, 900)).toEqual([]);
  });
});
