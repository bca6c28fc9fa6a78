import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { Session } from '../common/api';
import { errorText, formatAge, formatDateTime, formatValue } from '../common/format';
import { useKeyed, useObservable } from '../common/hooks';
import { CommandsPanel } from '../commands/CommandsPanel';
import { useServices } from '../services';
import { roleAtLeast } from '../types';
import {
  RANGES,
  type RangeDef,
  type RangeKey,
  type Series,
  appendPoint,
  fetchSeries,
  mergePoints,
  robustRange,
  summarize,
} from './series';
import { sensorKey, staleAfterMs } from './store';

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
  const [range, setRange] = useState<RangeKey>('15m');
  // first and last: the times of the first and last points drawn (seconds),
  // shown as data attributes so tests can compare the chart with storage.
  // summary: the chart's text alternative; clipped: spikes lie outside the drawn range.
  const [status, setStatus] = useState<{
    loading: boolean;
    error: string;
    points: number;
    first?: number;
    last?: number;
    summary?: string;
    clipped?: boolean;
  }>({
    loading: true,
    error: '',
    points: 0,
  });
  const chartEl = useRef<HTMLDivElement>(null);
  const backRef = useRef<HTMLButtonElement>(null);
  const s = svc.sensors.get(key);
  const def = RANGES.find((r) => r.key === range)!;

  useEffect(() => backRef.current?.focus(), [sensorId, metric]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !(e.target instanceof HTMLInputElement) && !document.querySelector('dialog[open]')) {
        onBack();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onBack]);

  // The chart: load the range over REST, then append live readings; redraw
  // at most once per animation frame.
  useEffect(() => {
    const el = chartEl.current;
    if (!el) return;
    let disposed = false;
    let plot: uPlot | null = null;
    let series: Series | null = null;
    let loadSeq = 0;
    const live: { t: number; v: number }[] = [];
    // Refetched thinned spans that came while the range was loading.
    const refetched: { t: number; v: number }[] = [];
    let redrawScheduled = false;
    const describe = (ser: Series) => ({
      summary: summarize(ser.cols, s?.unit ?? '', formatValue),
      clipped: robustRange(ser.cols[0] ?? [])?.clipped ?? false,
    });

    const redraw = () => {
      redrawScheduled = false;
      if (!plot || !series || disposed) return;
      plot.setData([series.t, ...series.cols] as uPlot.AlignedData, true);
      const points = series.t.length;
      const first = series.t[0];
      const last = series.t[points - 1];
      const d = describe(series);
      setStatus((st) =>
        st.points === points && st.first === first && st.last === last && st.summary === d.summary && st.clipped === d.clipped
          ? st
          : { ...st, points, first, last, ...d },
      );
    };
    const scheduleRedraw = () => {
      if (redrawScheduled) return;
      redrawScheduled = true;
      svc.batcher.schedule(redraw);
    };

    const append = (t: number, v: number) => {
      if (!series) {
        live.push({ t, v });
        return;
      }
      appendPoint(series, t, v, def.ms);
      scheduleRedraw();
    };
    // A thinned span refetched by the store: merged into the points,
    // or the whole range reloaded when it is drawn in buckets.
    const offHistory = svc.sensors.onHistory(key, (points) => {
      if (!series) {
        refetched.push(...points);
        return;
      }
      if (mergePoints(series, points)) scheduleRedraw();
      else {
        series = null;
        void load();
      }
    });
    const offLive = svc.sensors.onLive(key, (_r, t) => append(t, _r.value));

    const load = async () => {
      const seq = ++loadSeq;
      setStatus((st) => ({ ...st, loading: true, error: '' }));
      try {
        const loaded = await fetchSeries(svc.api, sensorId, metric, def);
        if (disposed || seq !== loadSeq) return;
        // Readings that arrived while the request was in flight.
        for (const p of live.splice(0)) appendPoint(loaded, p.t, p.v, def.ms);
        // The request may have run before those readings were stored; the
        // bucketed range asked after them anyway.
        mergePoints(loaded, refetched.splice(0));
        series = loaded;
        const uPlotMod = await import('uplot');
        if (disposed || seq !== loadSeq) return;
        plot?.destroy();
        plot = new uPlotMod.default(chartOptions(el, def, s?.unit ?? ''), [series.t, ...series.cols] as uPlot.AlignedData, el);
        setStatus({
          loading: false,
          error: '',
          points: series.t.length,
          first: series.t[0],
          last: series.t[series.t.length - 1],
          ...describe(series),
        });
      } catch (err) {
        if (disposed || seq !== loadSeq) return;
        setStatus({ loading: false, error: `Could not load history: ${errorText(err)}`, points: 0 });
      }
    };
    void load();
    // A reconnect that could not resume missed readings: reload the range.
    // A resumed one replays them as ordinary readings (appended above).
    const offReconnect = svc.ws.reloadNeeded.on(() => {
      series = null;
      void load();
    });

    const ro =
      typeof ResizeObserver === 'function'
        ? new ResizeObserver(() => {
            if (plot) plot.setSize(chartSize(el));
          })
        : null;
    ro?.observe(el);

    return () => {
      disposed = true;
      offLive();
      offHistory();
      offReconnect();
      ro?.disconnect();
      plot?.destroy();
    };
  }, [key, range]);

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
            onClick={() => void exportRange(sensorId, metric, def, setExporting)}
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
              : def.bucket
                ? `${status.points} buckets (min/avg/max per ${def.bucket})`
                : `${status.points} readings`}
        </span>
      </div>
      {status.error && (
        <p class="error" role="alert">
          {status.error}
        </p>
      )}
      {!s && !status.loading && status.points === 0 && !status.error && (
        <p class="notice" role="status" data-testid="unknown-sensor">
          No sensor "{sensorId}" with metric "{metric}" has sent readings. Check the link, or go back to all sensors.
        </p>
      )}
      {status.clipped && (
        <p class="muted small" data-testid="chart-clipped">
          Spikes beyond the drawn range are cut at its edge so that normal variation stays visible.
        </p>
      )}
      <div
        class="chart"
        ref={chartEl}
        role="img"
        aria-label={`Chart of ${sensorId} ${metric} over ${def.label}`}
        aria-describedby="chart-summary"
        data-points={status.loading ? undefined : status.points}
        data-first={status.first === undefined ? undefined : new Date(status.first * 1000).toISOString()}
        data-last={status.last === undefined ? undefined : new Date(status.last * 1000).toISOString()}
      />
      <p id="chart-summary" class="sr-only" data-testid="chart-summary">
        {status.loading ? 'Loading.' : (status.summary ?? 'No readings in this range.')}
      </p>
      {canCommand ? (
        <CommandsPanel sensorId={sensorId} />
      ) : (
        <p class="muted small" data-testid="no-commands">
          Commands to devices need the operator role; you are {svc.me?.role ?? 'signed in'}, so this page only shows readings.
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
async function exportRange(sensorId: string, metric: string, def: RangeDef, report: (s: string) => void): Promise<void> {
  report('Exporting…');
  const to = Date.now();
  const q = new URLSearchParams({ sensor_id: sensorId, metric, from: String(to - def.ms), to: String(to), format: 'csv' });
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

function chartSize(el: HTMLElement): { width: number; height: number } {
  const width = Math.max(200, Math.floor(el.clientWidth));
  const height = Math.max(160, Math.min(360, Math.floor(window.innerHeight * 0.38)));
  return { width, height };
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function chartOptions(el: HTMLElement, def: RangeDef, unit: string): uPlot.Options {
  const line = cssVar('--accent', '#2563eb');
  const band = cssVar('--accent-weak', 'rgba(37,99,235,0.15)');
  const axis = cssVar('--fg-muted', '#666');
  const grid = cssVar('--border', '#ddd');
  const axisOpts: uPlot.Axis = { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const fmt = (_u: uPlot, v: number | null) => (v === null ? '—' : formatValue(v) + (unit ? ' ' + unit : ''));
  // The hover shows the time to the second: these are per-second series.
  const series: uPlot.Series[] = [{ value: (_u, ts) => (ts === null ? '—' : formatDateTime(ts * 1000)) }];
  const opts: uPlot.Options = {
    ...chartSize(el),
    scales: {
      x: {
        time: true,
        // Always show the whole range up to now, however sparse the data.
        range: () => {
          const now = Date.now() / 1000;
          return [now - def.ms / 1000, now];
        },
      },
      // Robust: spikes are clipped at the edge (and said so) instead of
      // flattening the normal variation.
      y: {
        range: (u, dmin, dmax) => {
          const r = robustRange((u.data[1] ?? []) as number[]);
          return r ? [r.lo, r.hi] : [dmin, dmax];
        },
      },
    },
    axes: [
      // One clock with the rest of the screen (24 h).
      { ...axisOpts, values: (_u, splits, _ax, _space, incr) => splits.map((v) => axisTime(v * 1000, incr)) },
      {
        ...axisOpts,
        size: 70,
        label: unit || undefined,
        labelSize: unit ? 18 : 0,
        values: (_u, splits) => splits.map((v) => formatValue(v)),
      },
    ],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
    series,
  };
  if (def.bucket) {
    series.push(
      { label: 'avg', stroke: line, width: 1.5, value: fmt },
      { label: 'min', stroke: band, width: 1, value: fmt },
      { label: 'max', stroke: band, width: 1, value: fmt },
    );
    opts.bands = [{ series: [3, 2], fill: band }];
  } else {
    series.push({ label: unit ? `value (${unit})` : 'value', stroke: line, width: 1.5, value: fmt, points: { show: false } });
  }
  return opts;
}


/** Time axis labels in the screen's 24-hour clock: seconds only when ticks are under a minute apart. */
function axisTime(ms: number, incrSeconds: number): string {
  const d = new Date(ms);
  if (incrSeconds >= 86400) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const opts: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (incrSeconds < 60) opts.second = '2-digit';
  return d.toLocaleTimeString(undefined, opts);
}
