import { describe, expect, it } from 'vitest';
import type { AlertRule } from '../types';

const T = '2026-03-01T12:00:00.000Z';
import { limitsOf, toForm, toRules } from './RulesEditor';

const stored: AlertRule[] = [
  { sensor_id: 'b', metric: 'humidity', kind: 'stale', enabled: true, after_seconds: 300, updated_by: 'x', updated_at: T },
  { sensor_id: 'b', metric: 'temperature', kind: 'spike', enabled: true, k: 6, warmup: 100, resolve_after: 10, updated_by: 'x', updated_at: T },
  { sensor_id: 'b', metric: 'temperature', kind: 'threshold', enabled: true, min: -10, max: 60, updated_by: 'x', updated_at: T },
];

describe('rules editor', () => {
  it('opens and saves unchanged: the same rules, nothing new', () => {
    const f = toForm(stored, 'temperature');
    expect(f).toEqual({ thOn: true, min: '-10', max: '60', spOn: true, k: '6', stOn: true, after: '' });
    expect(toRules(stored, 'temperature', f)).toEqual([
      { metric: 'humidity', kind: 'stale', enabled: true, after_seconds: 300 },
      { metric: 'temperature', kind: 'threshold', enabled: true, min: -10, max: 60 },
      { metric: 'temperature', kind: 'spike', enabled: true, k: 6, warmup: 100, resolve_after: 10 },
    ]);
    // A metric without rules: the defaults, and saving them stores none.
    expect(toRules([], 'pressure', toForm([], 'pressure'))).toEqual([]);
  });

  it('changes the threshold and keeps what the form does not show', () => {
    const f = { ...toForm(stored, 'temperature'), max: '90', min: '', k: '' };
    const out = toRules(stored, 'temperature', f);
    expect(out.find((r) => r.kind === 'threshold')).toEqual({ metric: 'temperature', kind: 'threshold', enabled: true, max: 90 });
    // k cleared: the default again, warmup and resolve_after kept.
    expect(out.find((r) => r.kind === 'spike')).toEqual({ metric: 'temperature', kind: 'spike', enabled: true, warmup: 100, resolve_after: 10 });
  });

  it('stores a switched-off default, and refuses text that is not a number', () => {
    const f = { ...toForm([], 'pressure'), spOn: false, after: '120' };
    expect(toRules([], 'pressure', f)).toEqual([
      { metric: 'pressure', kind: 'spike', enabled: false },
      { metric: 'pressure', kind: 'stale', enabled: true, after_seconds: 120 },
    ]);
    expect(() => toRules([], 'pressure', { ...f, min: 'ten' })).toThrow('Min must be a number, not "ten".');
    expect(toRules([], 'pressure', { ...f, thOn: true, min: '1,5' })[0]).toEqual({ metric: 'pressure', kind: 'threshold', enabled: true, min: 1.5 });
  });

  it('draws only an enabled threshold', () => {
    expect(limitsOf(stored, 'temperature')).toEqual({ min: -10, max: 60 });
    expect(limitsOf(stored, 'humidity')).toEqual({});
    expect(limitsOf([{ metric: 'm', kind: 'threshold', enabled: false, max: 3 }], 'm')).toEqual({});
  });
});

describe('threshold lines', () => {
  it('widen the chart range to a limit near the data, not to a far one', async () => {
    const { widen } = await import('../sensors/thresholds');
    expect(widen([40, 60], {})).toEqual([40, 60]);
    const [lo, hi] = widen([40, 60], { min: 30, max: 70 }) as [number, number];
    expect(lo).toBeCloseTo(29);
    expect(hi).toBeCloseTo(71);
    expect(widen([40, 60], { min: 10, max: 90 })).toEqual([40, 60]);
    expect(widen([40, 60], { max: 50 })).toEqual([40, 60]);
  });
});
