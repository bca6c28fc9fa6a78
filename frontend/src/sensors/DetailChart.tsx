import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { useObservable } from '../common/hooks';
import { useServices } from '../services';
import type { Alert } from '../types';
import { ChartControls } from './ChartControls';
import { type View, alertEvents, commandEvents, shiftView, zoomView } from './chartModel';
import { type ChartStatus, ChartController } from './chartController';
import type { RangeDef } from './series';
import { sensorKey } from './store';

interface Props {
  sensorId: string;
  metric: string;
  unit: string;
  def: RangeDef;
  view: View;
  onView: (v: View) => void;
  onStatus: (s: ChartStatus) => void;
  /** More uPlot plugins for the chart. */
  plugins?: uPlot.Plugin[];
}

/**
 * The detail chart with its controls: zoom, pan, custom range, metrics
 * overlaid, alert and command markers, and a text alternative.
 */
export function DetailChart({ sensorId, metric, unit, def, view, onView, onStatus, plugins }: Props) {
  const svc = useServices();
  useObservable(svc.sensors.keysChanged);
  useObservable(svc.alerts.changed);
  useObservable(svc.commands.changed);
  const [overlays, setOverlays] = useState<string[]>([]);
  const [status, setStatus] = useState<ChartStatus>({ loading: true, error: '', points: 0, clipped: 0, gaps: '', bucket: '' });
  const [restAlerts, setRestAlerts] = useState<Alert[]>([]);
  const chartEl = useRef<HTMLDivElement>(null);
  const ctl = useRef<ChartController | null>(null);
  // The controller's callbacks reach the current props through these.
  const latest = useRef({ view, onView, onStatus, def });
  latest.current = { view, onView, onStatus, def };

  // The sensor's other metrics, to overlay.
  const keys = svc.sensors.keys;
  const others = useMemo(
    () =>
      keys
        .map((k) => svc.sensors.get(k))
        .filter((s) => s && s.sensorId === sensorId && s.metric !== metric)
        .map((s) => ({ metric: s!.metric, unit: s!.unit })),
    [keys, sensorId, metric],
  );
  const overlayKey = overlays.join('\u0000');

  useEffect(() => {
    const el = chartEl.current;
    if (!el) return;
    const lines = [{ metric, unit }, ...overlays.map((m) => ({ metric: m, unit: svc.sensors.get(sensorKey(sensorId, m))?.unit ?? '' }))];
    const c = new ChartController(el, svc, {
      sensorId,
      lines,
      def,
      view: latest.current.view,
      onStatus: (s) => {
        setStatus(s);
        latest.current.onStatus(s);
      },
      onZoom: (from, to) => {
        const v = zoomView(from, to);
        if (v) latest.current.onView(v);
      },
      onPan: (ms) => latest.current.onView(shiftView(latest.current.view, latest.current.def.ms, Date.now(), ms)),
      plugins,
    });
    ctl.current = c;
    return () => {
      c.destroy();
      ctl.current = null;
    };
  }, [sensorId, metric, def.key, overlayKey]);

  useEffect(() => ctl.current?.setView(view), [view]);

  // Alerts of this sensor from storage (resolved ones too); live ones come
  // through the alerts store.
  useEffect(() => {
    let gone = false;
    svc.api
      .get<{ alerts: Alert[] } | Alert[]>('/api/alerts', { sensor_id: sensorId, limit: 1000 })
      .then((res) => !gone && setRestAlerts(Array.isArray(res) ? res : (res.alerts ?? [])))
      .catch(() => {
        // Markers are extra: a chart without them still shows the data.
      });
    if (!svc.commands.historyFor(sensorId)) void svc.commands.loadHistory(sensorId);
    return () => {
      gone = true;
    };
  }, [sensorId]);

  const commandRecords = svc.commands.historyFor(sensorId)?.records;
  // active changes identity whenever any alert changes.
  const active = svc.alerts.active;
  const events = useMemo(
    () =>
      [...alertEvents([...restAlerts, ...active, ...svc.alerts.history], sensorId, metric), ...commandEvents(commandRecords ?? [])].sort(
        (a, b) => a.t - b.t,
      ),
    [restAlerts, active, commandRecords, sensorId, metric],
  );
  useEffect(() => ctl.current?.setEvents(events), [events, overlayKey, def.key]);

  const iso = (ms?: number) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return (
    <>
      <ChartControls
        view={view}
        def={def}
        onView={onView}
        metric={metric}
        unit={unit}
        others={others}
        overlays={overlays}
        onOverlays={setOverlays}
      />
      {status.error && (
        <p class="error" role="alert">
          {status.error}
        </p>
      )}
      {status.clipped > 0 && (
        <p class="muted small" data-testid="chart-clipped">
          {status.clipped === 1 ? 'One spike lies' : `${status.clipped} spikes lie`} beyond the drawn range: cut at its edge and marked ▲▼ so that
          normal variation stays visible.
        </p>
      )}
      <div
        class="chart"
        ref={chartEl}
        role="img"
        aria-label={`Chart of ${sensorId} ${[metric, ...overlays].join(', ')}`}
        aria-describedby="chart-summary"
        data-points={status.loading ? undefined : status.points}
        data-first={status.first === undefined ? undefined : new Date(status.first * 1000).toISOString()}
        data-last={status.last === undefined ? undefined : new Date(status.last * 1000).toISOString()}
        data-view={view.kind}
        data-x-min={iso(status.window?.[0])}
        data-x-max={iso(status.window?.[1])}
        data-gaps={status.loading ? undefined : status.gaps}
        data-clipped={status.clipped}
        data-bucket={status.bucket}
        data-metrics={[metric, ...overlays].join(' ')}
        data-axes={status.axes}
      />
      <p id="chart-summary" class="sr-only" data-testid="chart-summary">
        {status.loading ? 'Loading.' : (status.summary ?? 'No readings in this range.')}
      </p>
    </>
  );
}
