import { describe, expect, it, vi } from 'vitest';
import type { Api } from '../common/api';
import { FrameBatcher } from '../common/frame';
import type { Alert, Silence } from '../types';
import { SilenceStore, covers, inForce } from './silences';
import { AlertStore } from './store';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function silence(id: number, over: Partial<Silence> = {}): Silence {
  return {
    id,
    sensor_id: 's-1',
    metric: null,
    kind: null,
    reason: '',
    created_by: 'alice',
    created_at: iso(NOW - 60_000),
    until: iso(NOW + 3_600_000),
    ended_by: null,
    ended_at: null,
    ...over,
  };
}

function alert(id: number, over: Partial<Alert> = {}): Alert {
  return {
    id,
    sensor_id: 's-1',
    metric: 'temperature',
    kind: 'offline',
    severity: 'critical',
    value: 1,
    limit_or_score: 1,
    state: 'open',
    opened_at: iso(NOW),
    updated_at: iso(NOW),
    count: 1,
    acked_by: null,
    resolved_by: null,
    resolved_at: null,
    event_id: id,
    ...over,
  };
}

describe('silences', () => {
  it('covers a whole sensor, or one rule (offline alerts: the stale rule)', () => {
    expect(covers(silence(1), 's-1', 'humidity', 'spike')).toBe(true);
    expect(covers(silence(1), 's-2', 'humidity', 'spike')).toBe(false);
    const rule = silence(2, { metric: 'temperature', kind: 'stale' });
    expect(covers(rule, 's-1', 'temperature', 'stale')).toBe(true);
    expect(covers(rule, 's-1', 'temperature', 'threshold')).toBe(false);
    expect(inForce(silence(3, { until: iso(NOW) }), NOW)).toBe(false);
    expect(inForce(silence(4, { ended_at: iso(NOW), ended_by: 'bob' }), NOW - 1)).toBe(false);
  });

  it('keeps an ended silence ended, and finds the one covering an alert', () => {
    vi.useFakeTimers({ now: NOW });
    try {
      const st = new SilenceStore(new FrameBatcher(), {} as Api);
      st.apply(silence(1, { metric: 'temperature', kind: 'stale', until: iso(NOW + 60_000) }));
      st.apply(silence(2, { until: iso(NOW + 120_000) }));
      expect(st.covering(alert(9))?.id).toBe(2); // the one lasting longest
      st.apply(silence(2, { ended_by: 'bob', ended_at: iso(NOW) }));
      st.apply(silence(2)); // a late copy from before the end
      expect(st.get(2)?.ended_by).toBe('bob');
      expect(st.covering(alert(9))?.id).toBe(1);
      expect(st.ofSensor('s-1').map((s) => s.id)).toEqual([1]);
      vi.setSystemTime(NOW + 60_000);
      expect(st.covering(alert(9))).toBeUndefined();
      st.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('alerts under a silence are kept, not announced and not counted', () => {
    const alerts = new AlertStore(new FrameBatcher());
    const covered = new Set(['s-1']);
    alerts.coveredBySilence = (a) => covered.has(a.sensor_id);
    const said: Alert[] = [];
    alerts.newAlert.on((a) => said.push(a));
    alerts.apply(alert(1)); // covered by a silence in force
    alerts.apply(alert(2, { sensor_id: 's-2', silence_id: 7 })); // opened under one since ended
    alerts.apply(alert(3, { sensor_id: 's-3' }));
    expect(said.map((a) => a.id)).toEqual([3]);
    expect(alerts.unseenCritical).toBe(1);
    expect(alerts.active.length).toBe(3);
    expect(alerts.counted.map((a) => a.id)).toEqual([3, 2]);
    covered.clear(); // the silence ended: alert 1 counts again, unannounced
    alerts.mutedChanged();
    expect(alerts.counted.map((a) => a.id)).toEqual([3, 2, 1]);
    expect(said.length).toBe(1);
  });
});
