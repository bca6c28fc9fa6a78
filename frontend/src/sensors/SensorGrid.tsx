import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { silencedText } from '../alerts/silences';
import { formatAge, formatTime, formatValue } from '../common/format';
import { useKeyed, useObservable } from '../common/hooks';
import { useServices } from '../services';
import { SparkHost } from './sparkhost';
import { Sparkline } from './Sparkline';
import { type GridPrefs, type SortKey, compareTiles, loadGridPrefs, matches, saveGridPrefs } from './filter';
import { staleAfterMs } from './store';

interface Props {
  onOpen: (sensorId: string, metric: string) => void;
}

/** Tiles of every sensor metric, filtered by text, sorted by name or severity. */
export function SensorGrid({ onOpen }: Props) {
  const svc = useServices();
  useObservable(svc.sensors.keysChanged);
  const [prefs, setPrefs] = useState(loadGridPrefs);
  const update = (p: Partial<GridPrefs>) => {
    const next = { ...prefs, ...p };
    setPrefs(next);
    saveGridPrefs(next);
  };
  const host = useMemo(() => new SparkHost(), []);
  useEffect(() => () => host.disconnect(), [host]);
  // Severity order follows the alerts.
  useObservable(svc.alerts.changed, prefs.sort === 'severity');

  const keys = svc.sensors.keys;
  const severities = prefs.sort === 'severity' ? keys.map((k) => svc.alerts.severityOf(k)).join() : '';
  const visible = useMemo(() => {
    const out = keys.filter((k) => {
      const s = svc.sensors.get(k)!;
      return matches(prefs.filter, prefs.whole, [s.sensorId, s.metric, s.unit ?? '']);
    });
    if (prefs.sort === 'severity') {
      const now = Date.now();
      const info = (k: string) => {
        const s = svc.sensors.get(k)!;
        return { name: k, severity: svc.alerts.severityOf(k), stale: !s.ts || now - s.ts > staleAfterMs(s) };
      };
      out.sort((a, b) => compareTiles('severity', info(a), info(b)));
    }
    return out;
  }, [keys, prefs, severities]);

  return (
    <div class="grid-wrap">
      <div class="toolbar">
        <label for="sensor-filter">Filter</label>
        <input
          id="sensor-filter"
          type="search"
          placeholder="sensor, metric or unit"
          value={prefs.filter}
          onInput={(e) => update({ filter: e.currentTarget.value })}
        />
        <label class="small">
          <input type="checkbox" id="sensor-filter-whole" checked={prefs.whole} onChange={(e) => update({ whole: e.currentTarget.checked })} /> Whole ids
        </label>
        <label for="sensor-sort" class="small">
          Sort
        </label>
        <select id="sensor-sort" value={prefs.sort} onChange={(e) => update({ sort: e.currentTarget.value as SortKey })}>
          <option value="name">by name</option>
          <option value="severity">by severity</option>
        </select>
        <span class="muted" aria-live="polite">
          {visible.length === keys.length
            ? `${svc.sensors.sensorCount} sensors, ${keys.length} metrics`
            : `${visible.length} of ${keys.length} metrics`}
        </span>
      </div>
      {svc.sensorsError && (
        <p class="error" role="alert">
          {svc.sensorsError}
        </p>
      )}
      {keys.length === 0 && !svc.sensorsError && <p class="empty">No sensors yet. Readings appear here as they arrive.</p>}
      <ul class="tiles" aria-label="Sensors">
        {visible.map((k) => (
          <Tile key={k} k={k} host={host} onOpen={onOpen} />
        ))}
      </ul>
    </div>
  );
}

/**
 * One sensor metric. Off-screen tiles (most of 500) stop listening to their
 * readings and to the clock and catch up when scrolled into view, so a
 * frame only renders what can be seen.
 */
function Tile({ k, host, onOpen }: { k: string; host: SparkHost; onOpen: Props['onOpen'] }) {
  const svc = useServices();
  const ref = useRef<HTMLLIElement>(null);
  const [visible, setVisible] = useState(false);
  useEffect(() => host.observe(ref.current!, setVisible), [host]);
  useKeyed(svc.sensors.perKey, k, visible);
  useObservable(svc.clock, visible);
  useObservable(svc.alerts.changed, visible);
  const s = svc.sensors.get(k);
  if (!s) return null;
  const age = s.ts ? svc.clock.now - s.ts : Infinity;
  const stale = age > staleAfterMs(s);
  const sev = svc.alerts.severityOf(k);
  const tone = sev ?? (stale ? 'stale' : 'normal');
  const value = formatValue(s.value);
  const ageText = s.ts ? `${formatAge(Math.max(0, age))} ago` : 'no data';
  const registered = svc.registered.has(s.sensorId);
  // Silence changes reach tiles through alerts.changed (mutedChanged).
  const silence = svc.silences.ofSensor(s.sensorId)[0];
  return (
    <li ref={ref} class={`tile tone-${tone}${stale ? ' stale' : ''}`} data-sensor={s.sensorId} data-metric={s.metric}>
      <button
        type="button"
        class="tile-button"
        onClick={() => onOpen(s.sensorId, s.metric)}
      >
        {/* The visible text is the button's name (no aria-label that would
            hide it from speech input); sr-only bits make it a sentence. */}
        <span class="tile-head">
          <span class="tile-id" title={s.sensorId}>
            {s.sensorId}
          </span>
          <span class="tile-metric" title={s.metric}>
            {s.metric}
          </span>
        </span>
        <span class="sr-only">: </span>
        <span class="tile-value" data-testid="tile-value">
          {value}
          {s.unit && <span class="unit"> {s.unit}</span>}
        </span>
        <Sparkline ring={s.spark} version={s.version} tone={tone} host={host} visible={visible} />
        <span class="tile-foot">
          <span class="sr-only">, </span>
          {sev && (
            <span class={`badge sev-${sev}`}>
              {sev}
              <span class="sr-only"> alert, </span>
            </span>
          )}
          {registered && (
            <span class="badge registered" title="Registered device: it connects with its own MQTT credentials">
              reg<span class="sr-only">istered device, </span>
            </span>
          )}
          {silence && (
            <span class="badge silenced" title={silencedText(silence)} data-testid="tile-silenced">
              silenced<span class="sr-only"> until {formatTime(silence.until)}, </span>
            </span>
          )}
          <span class="tile-age">{stale ? `stale · ${ageText}` : ageText}</span>
        </span>
      </button>
    </li>
  );
}
