import { useState } from 'preact/hooks';
import { errorText, formatAge, formatValue, parseTs } from '../common/format';
import { useObservable } from '../common/hooks';
import { useServices } from '../services';
import { type Alert, roleAtLeast } from '../types';

interface Props {
  /** Opens the discussion of an alert in room "alerts". */
  onDiscuss: (alert: Alert) => void;
  onOpenSensor: (sensorId: string, metric: string) => void;
}

const KIND_TEXT: Record<string, string> = { threshold: 'out of range', spike: 'spike', offline: 'offline' };

/** Open and acknowledged alerts, newest first, with their lifecycle buttons. */
export function AlertsPanel({ onDiscuss, onOpenSensor }: Props) {
  const svc = useServices();
  useObservable(svc.alerts.changed);
  useObservable(svc.clock);
  const store = svc.alerts;
  const canAct = roleAtLeast(svc.me?.role, 'analyst');
  const list = store.active;

  return (
    <div class="alerts" onPointerDown={() => store.markSeen()} onFocusIn={() => store.markSeen()}>
      <div class="panel-head">
        <h2 id="alerts-title">
          Alerts {list.length > 0 && <span class="count">{list.length}</span>}
        </h2>
        <NotifyToggles />
      </div>
      {store.availability === 'missing' && <p class="muted small">Alerts are not available on this server yet.</p>}
      {store.loadError && <p class="error small">{store.loadError}</p>}
      {store.availability === 'available' && list.length === 0 && <p class="muted small">No open alerts.</p>}
      <ul class="alert-list" aria-labelledby="alerts-title">
        {list.map((a) => (
          <AlertItem key={String(a.id)} alert={a} canAct={canAct} onDiscuss={onDiscuss} onOpenSensor={onOpenSensor} />
        ))}
      </ul>
    </div>
  );
}

function AlertItem({
  alert: a,
  canAct,
  onDiscuss,
  onOpenSensor,
}: {
  alert: Alert;
  canAct: boolean;
  onDiscuss: Props['onDiscuss'];
  onOpenSensor: Props['onOpenSensor'];
}) {
  const svc = useServices();
  const [resolving, setResolving] = useState(false);
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const age = svc.clock.now - parseTs(a.opened_at);
  const noteId = `resolve-note-${a.id}`;

  const act = async (type: 'alert_ack' | 'alert_resolve', data: Record<string, unknown>) => {
    setBusy(true);
    setError('');
    const { reply } = svc.ws.request(type, data, { queue: true });
    try {
      const m = await reply;
      // Servers answer with the changed alert; the broadcast carries it too.
      if (m.type === 'alert' && m.data) svc.alerts.apply(m.data as Alert, false);
      setResolving(false);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'timeout') setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  const limitText =
    a.kind === 'spike'
      ? `score ${formatValue(a.limit_or_score)}`
      : a.kind === 'offline'
        ? 'no readings'
        : `limit ${formatValue(a.limit_or_score)}`;

  return (
    <li class={`alert-item sev-${a.severity} alert-${a.state}`} data-alert-id={String(a.id)} data-state={a.state}>
      <div class="alert-line">
        <span class={`badge sev-${a.severity}`}>{a.severity}</span>
        <button type="button" class="link-button alert-sensor" onClick={() => onOpenSensor(a.sensor_id, a.metric)}>
          {a.sensor_id} · {a.metric}
        </button>
        <span class="muted small alert-age">{formatAge(age)}</span>
      </div>
      <div class="alert-line small">
        <span>{KIND_TEXT[a.kind] ?? a.kind}</span>
        {a.kind !== 'offline' && <span>value {formatValue(a.value)}</span>}
        <span class="muted">{limitText}</span>
        {a.count > 1 && <span class="muted">×{a.count}</span>}
        <span class={`state state-${a.state}`}>
          {a.state === 'acknowledged' ? `ack'd by ${a.acked_by ?? '?'}` : a.state}
        </span>
      </div>
      <div class="alert-actions">
        <button type="button" onClick={() => onDiscuss(a)}>
          Discuss
        </button>
        {canAct && a.state === 'open' && (
          <button type="button" disabled={busy} onClick={() => act('alert_ack', { alert_id: a.id })}>
            Acknowledge
          </button>
        )}
        {canAct && !resolving && (
          <button type="button" disabled={busy} onClick={() => setResolving(true)}>
            Resolve…
          </button>
        )}
      </div>
      {resolving && (
        <form
          class="resolve-form"
          onSubmit={(e) => {
            e.preventDefault();
            void act('alert_resolve', { alert_id: a.id, note: note.trim() });
          }}
        >
          <label for={noteId}>Resolution note</label>
          <input id={noteId} value={note} maxLength={500} onInput={(e) => setNote(e.currentTarget.value)} />
          <button type="submit" class="primary" disabled={busy}>
            Resolve
          </button>
          <button type="button" onClick={() => setResolving(false)}>
            Cancel
          </button>
        </form>
      )}
      {error && (
        <p class="error small" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

function NotifyToggles() {
  const svc = useServices();
  useObservable(svc.authChanged);
  const canNotify = typeof Notification !== 'undefined';
  return (
    <div class="toggles small">
      <label>
        <input type="checkbox" checked={svc.prefs.sound} onChange={(e) => svc.setPrefs({ sound: e.currentTarget.checked })} />
        Sound
      </label>
      {canNotify && (
        <label>
          <input
            type="checkbox"
            checked={svc.prefs.notify}
            onChange={async (e) => {
              const on = e.currentTarget.checked;
              if (on && Notification.permission === 'default') await Notification.requestPermission();
              svc.setPrefs({ notify: on && Notification.permission === 'granted' });
            }}
          />
          Notify
        </label>
      )}
    </div>
  );
}
