import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { formatAge, formatValue } from '../common/format';
import { useKeyed, useObservable } from '../common/hooks';
import { useServices } from '../services';
import { SparkHost } from './sparkhost';
import { Sparkline } from './Sparkline';
import { staleAfterMs } from './store';

interface Props {
  onOpen: (sensorId: string, metric: string) => void;
}

/** Tiles of every sensor metric, filtered by text. */
export function SensorGrid({ onOpen }: Props) {
  const svc = useServices();
  useObservable(svc.sensors.keysChanged);
  const [filter, setFilter] = useState('');
  const host = useMemo(() => new SparkHost(), []);
  useEffect(() => () => host.disconnect(), [host]);

  const keys = svc.sensors.keys;
  const visible = useMemo(() => {
    const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length === 0) return keys;
    return keys.filter((k) => {
      const s = svc.sensors.get(k)!;
      const hay = `${s.sensorId} ${s.metric} ${s.unit}`.toLowerCase();
      return terms.every((t) => hay.includes(t));
    });
  }, [keys, filter]);

  return (
    <div class="grid-wrap">
      <div class="toolbar">
        <label for="sensor-filter">Filter</label>
        <input
          id="sensor-filter"
          type="search"
          placeholder="sensor, metric or unit"
          value={filter}
          onInput={(e) => setFilter(e.currentTarget.value)}
        />
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
  return (
    <li ref={ref} class={`tile tone-${tone}${stale ? ' stale' : ''}`} data-sensor={s.sensorId} data-metric={s.metric}>
      <button
        type="button"
        class="tile-button"
        onClick={() => onOpen(s.sensorId, s.metric)}
        aria-label={`${s.sensorId} ${s.metric}: ${value} ${s.unit}, ${ageText}${stale ? ', stale' : ''}${sev ? `, ${sev} alert` : ''}${registered ? ', registered device' : ''}`}
      >
        <span class="tile-head">
          <span class="tile-id" title={s.sensorId}>
            {s.sensorId}
          </span>
          <span class="tile-metric" title={s.metric}>
            {s.metric}
          </span>
        </span>
        <span class="tile-value" data-testid="tile-value">
          {value}
          {s.unit && <span class="unit"> {s.unit}</span>}
        </span>
        <Sparkline ring={s.spark} version={s.version} tone={tone} host={host} visible={visible} />
        <span class="tile-foot">
          {sev && <span class={`badge sev-${sev}`}>{sev}</span>}
          {registered && (
            <span class="badge registered" title="Registered device: it connects with its own MQTT credentials">
              reg
            </span>
          )}
          <span class="tile-age">{stale ? `stale · ${ageText}` : ageText}</span>
        </span>
      </button>
    </li>
  );
}
