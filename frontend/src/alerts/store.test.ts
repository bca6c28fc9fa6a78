import { describe, expect, it } from 'vitest';
import { FrameBatcher } from '../common/frame';
import type { Alert } from '../types';
import { AlertStore } from './store';

function alert(id: number, over: Partial<Alert> = {}): Alert {
  return {
    id,
    sensor_id: 's-1',
    metric: 'temperature',
    kind: 'spike',
    severity: 'warning',
    value: 30,
    limit_or_score: 5,
    state: 'open',
    opened_at: `2026-03-01T12:00:0${id}.000Z`,
    updated_at: `2026-03-01T12:00:0${id}.000Z`,
    count: 3,
    acked_by: null,
    resolved_by: null,
    resolved_at: null,
    event_id: id,
    ...over,
  };
}

describe('AlertStore: one definition of alerts needing attention', () => {
  it('keeps an alert that resolved by itself until someone acknowledges it', () => {
    const s = new AlertStore(new FrameBatcher(() => {}));
    s.apply(alert(1));
    s.apply(alert(2, { state: 'acknowledged', acked_by: 'ann' }));
    expect(s.active.map((a) => a.id)).toEqual([2, 1]);

    const resolved = { state: 'resolved' as const, resolved_by: 'system', resolved_at: '2026-03-01T12:01:00.000Z' };
    s.apply(alert(1, { ...resolved, updated_at: '2026-03-01T12:01:00.000Z' }));
    expect(s.active.map((a) => [a.id, a.state])).toEqual([
      [2, 'acknowledged'],
      [1, 'resolved'],
    ]);

    s.apply(alert(1, { ...resolved, acked_by: 'bob', updated_at: '2026-03-01T12:02:00.000Z' }));
    expect(s.active.map((a) => a.id)).toEqual([2]);
    expect(s.history.map((a) => [a.id, a.acked_by, a.resolved_by])).toEqual([[1, 'bob', 'system']]);
  });

  it('a REST reload keeps resolved alerts and drops live ones no longer live', () => {
    const s = new AlertStore(new FrameBatcher(() => {}));
    s.apply(alert(1));
    s.apply(alert(2, { state: 'resolved', resolved_by: 'system' }));
    s.replaceActive([]);
    expect(s.active.map((a) => a.id)).toEqual([2]);
  });

  it('takes a flapping flag as a change', () => {
    const s = new AlertStore(new FrameBatcher(() => {}));
    s.apply(alert(1));
    s.apply(alert(1, { flapping: true }));
    expect(s.get(1)?.flapping).toBe(true);
  });
});
