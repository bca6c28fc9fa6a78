import { useEffect, useRef, useState } from 'preact/hooks';
import { Session } from '../common/api';
import { errorText, formatAge, formatValue } from '../common/format';
import { useKeyed, useObservable } from '../common/hooks';
import { CommandsPanel } from '../commands/CommandsPanel';
import { RulesEditor } from '../alerts/RulesEditor';
import { SilenceControls } from '../alerts/SilenceControls';
import { useServices } from '../services';
import { roleAtLeast } from '../types';
import { DetailChart } from './DetailChart';
import { LIVE, type View, viewWindow } from './chartModel';
import type { ChartStatus } from './chartController';
import { RANGES, type RangeDef, type RangeKey } from './series';
import { sensorKey, staleAfterMs } from './store';
import { ThresholdLines } from './thresholds';

interface Props {
  sensorId: string;
  metric: string;
  onBack: () => void;
}

export function SensorDetail({ sensorId, metric, onBack }: Props) {
  const svc = useServices();
  const key = sensorKey(sensorId, metric);
  useKeyed(svc.sensors.perKey, key);
  useObservable(svc.clock);
  useObservable(svc.alerts.changed);
  const [range, setRangeKey] = useState<RangeKey>('15m');
  // The window shown: live (the range up to now) or fixed by a zoom, pan or custom range.
  const [view, setView] = useState<View>(LIVE);
  const setRange = (r: RangeKey) => {
    setRangeKey(r);
    setView(LIVE);
  };
  const [status, setStatus] = useState<ChartStatus>({ loading: true, error: '', points: 0, clipped: 0, gaps: '', bucket: '' });
  const backRef = useRef<HTMLButtonElement>(null);
  const s = svc.sensors.get(key);
  // The threshold rule's limits, drawn on the chart by a plugin the rules editor updates.
  const [thresholds] = useState(() => new ThresholdLines());
  useObservable(svc.sensors.keysChanged);
  const otherMetrics = s ? [] : svc.sensors.keys.map((k) => svc.sensors.get(k)).filter((x) => x?.sensorId === sensorId).map((x) => x!.metric);
  const def = RANGES.find((r) => r.key === range)!;

  useEffect(() => backRef.current?.focus(), [sensorId, metric]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement;
      if (e.key === 'Escape' && !typing && !document.querySelector('dialog[open]')) {
        onBack();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onBack]);

  const canCommand = roleAtLeast(svc.me?.role, 'operator');
  // GET /api/export/readings is for operators and admins, as commands are.
  const canExport = canCommand;
  const [exporting, setExporting] = useState('');
  const age = s?.ts ? svc.clock.now - s.ts : Infinity;
  const stale = s ? age > staleAfterMs(s) : true;
  const sev = svc.alerts.severityOf(key);

  return (
    <div class="detail">
      <div class="detail-head">
        <button type="button" ref={backRef} class="back" onClick={onBack}>
          ← All sensors
        </button>
        <h2>
          {sensorId} <span class="muted">{metric}</span>
        </h2>
        <div class={`detail-value${stale ? ' stale' : ''}${sev ? ` sev-text-${sev}` : ''}`} data-testid="detail-value">
          {formatValue(s?.value)}
          {s?.unit && <span class="unit"> {s.unit}</span>}
          <span class="muted small"> {s?.ts ? `${formatAge(Math.max(0, age))} ago` : 'no data'}</span>
        </div>
      </div>
      <div class="range-picker" role="group" aria-label="Time range">
        {RANGES.map((r) => (
          <button
            type="button"
            key={r.key}
            aria-pressed={range === r.key}
            class={range === r.key ? 'selected' : ''}
            onClick={() => setRange(r.key)}
          >
            {r.label}
          </button>
        ))}
        {canExport && (
          <button
            type="button"
            class="export"
            disabled={exporting === 'Exporting…'}
            onClick={() => void exportRange(sensorId, metric, def, viewWindow(view, def.ms, Date.now()), setExporting)}
          >
            Export CSV
          </button>
        )}
        {exporting && <span class="muted small">{exporting}</span>}
        <span class="muted small" aria-live="polite">
          {status.loading
            ? 'Loading…'
            : status.error
              ? ''
              : status.bucket
                ? `${status.points} buckets (min/avg/max per ${status.bucket})`
                : `${status.points} readings`}
        </span>
      </div>
      {!s && !status.loading && status.points === 0 && !status.error ? (
        <p class="notice" role="status" data-testid="unknown-sensor">
          {otherMetrics.length > 0
            ? `Sensor "${sensorId}" has no metric "${metric}"; its metrics are ${otherMetrics.join(', ')}.`
            : `Unknown sensor "${sensorId}": no readings of it have arrived. Check the link, or go back to all sensors.`}
        </p>
      ) : (
        <DetailChart
          sensorId={sensorId}
          metric={metric}
          unit={s?.unit ?? ''}
          def={def}
          view={view}
          onView={setView}
          onStatus={setStatus}
          plugins={[thresholds.plugin(s?.unit ?? '')]}
        />
      )}
      <RulesEditor sensorId={sensorId} metric={metric} unit={s?.unit ?? ''} onLimits={(l) => thresholds.set(l)} />
      <SilenceControls sensorId={sensorId} metric={metric} />
      {canCommand ? (
        <CommandsPanel sensorId={sensorId} />
      ) : (
        <p class="muted small" data-testid="no-commands">
          Commands to devices need the operator role; you are {svc.me?.role ? `signed in as ${withArticle(svc.me.role)}` : 'not signed in as one'}, so
          this page shows readings, alerts and the commands others sent, but cannot send any.
        </p>
      )}
    </div>
  );
}

/**
 * Downloads the shown range's raw readings as CSV. A plain link cannot
 * carry the bearer token, so the file is fetched and handed to the browser
 * as a blob: the server streams it, the browser holds it until it is saved.
 */
async function exportRange(
  sensorId: string,
  metric: string,
  def: RangeDef,
  [from, to]: [number, number],
  report: (s: string) => void,
): Promise<void> {
  report('Exporting…');
  const q = new URLSearchParams({ sensor_id: sensorId, metric, from: String(Math.round(from)), to: String(Math.round(to)), format: 'csv' });
  try {
    const res = await fetch('/api/export/readings?' + q.toString(), {
      headers: { Authorization: 'Bearer ' + (new Session().token ?? '') },
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `${sensorId}-${metric}-${def.key}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    report('');
  } catch (err) {
    report(`Export failed: ${errorText(err)}`);
  }
}

/** "a viewer", "an analyst". */
function withArticle(role: string): string {
  return (/^[aeiou]/i.test(role) ? 'an ' : 'a ') + role;
}
