import { useState } from 'preact/hooks';
import { errorText, formatAge, formatDateTime, formatValue, parseTs } from '../common/format';
import { useObservable } from '../common/hooks';
import { useServices } from '../services';
import { type Alert, roleAtLeast } from '../types';
import { inForce, silenceScope, silencedText } from './silences';

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
          Alerts {store.counted.length > 0 && <span class="count">{store.counted.length}</span>}
          {list.length > store.counted.length && (
            <span class="muted small"> +{list.length - store.counted.length} silenced</span>
          )}
        </h2>
        <NotifyToggles />
      </div>
      <p class="muted small alerts-definition">
        Needing attention: open, acknowledged, and resolved by themselves until someone acknowledges them.
      </p>
      {store.availability === 'missing' && <p class="muted small">Alerts are not available on this server yet.</p>}
      {store.loadError && <p class="error small">{store.loadError}</p>}
      {store.availability === 'available' && list.length === 0 && <p class="muted small">No alerts need attention.</p>}
      <ul class="alert-list" aria-labelledby="alerts-title">
        {list.map((a) => (
          <AlertItem key={String(a.id)} alert={a} canAct={canAct} onDiscuss={onDiscuss} onOpenSensor={onOpenSensor} />
        ))}
      </ul>
      <AlertHistory />
      <SilenceHistory />
    </div>
  );
}

/** Resolved alerts with who acknowledged and resolved them, and their notes. */
function AlertHistory() {
  const svc = useServices();
  const [open, setOpen] = useState(false);
  const [notes, setNotes] = useState<Record<string, string>>({});
  const list = svc.alerts.history.filter((a) => a.acked_by);
  const load = async (id: string) => {
    if (id in notes) return;
    try {
      const res = await svc.api.get<{ note?: string }>(`/api/alerts/${encodeURIComponent(id)}`);
      setNotes((n) => ({ ...n, [id]: res.note ?? '' }));
    } catch (err) {
      setNotes((n) => ({ ...n, [id]: `(could not load: ${errorText(err)})` }));
    }
  };
  return (
    <details class="alert-history" open={open} onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>History ({list.length} handled)</summary>
      {open && (
        <ul class="alert-list history-list" aria-label="Handled alerts">
          {list.length === 0 && <li class="muted small">No handled alerts yet.</li>}
          {list.map((a) => {
            const id = String(a.id);
            return (
              <li key={id} id={`alert-${id}`} class="alert-item alert-resolved" data-alert-id={id} tabIndex={-1}>
                <div class="alert-line small">
                  <span class={`badge sev-${a.severity}`}>{a.severity}</span>
                  <span>
                    #{id} {a.sensor_id} · {a.metric} · {KIND_TEXT[a.kind] ?? a.kind}
                  </span>
                  {a.silence_id != null && <span class="muted">opened while silenced</span>}
                </div>
                <div class="alert-line small muted">
                  <span>opened {formatDateTime(a.opened_at)}</span>
                  <span>acknowledged by {a.acked_by ?? '—'}</span>
                  <span>
                    resolved by {a.resolved_by ?? '—'}
                    {a.resolved_at ? ` at ${formatDateTime(a.resolved_at)}` : ''}
                  </span>
                </div>
                {id in notes ? (
                  <p class="small history-note">{notes[id] ? `Note: ${notes[id]}` : 'No note.'}</p>
                ) : (
                  <button type="button" class="link-button small" onClick={() => void load(id)}>
                    Show note
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </details>
  );
}

/** Recent silences, in force or not: who silenced what, why, until when, and who ended them early. */
function SilenceHistory() {
  const svc = useServices();
  useObservable(svc.silences.changed);
  const [open, setOpen] = useState(false);
  const list = svc.silences.recent().slice(0, 50);
  const now = Date.now();
  return (
    <details class="silence-history" open={open} onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}>
      <summary>Silences ({svc.silences.inForce(now).length} in force)</summary>
      {open && (
        <ul class="alert-list history-list" aria-label="Recent silences" data-testid="silence-history">
          {svc.silences.loadError && <li class="error small">{svc.silences.loadError}</li>}
          {list.length === 0 && <li class="muted small">No silences yet.</li>}
          {list.map((s) => (
            <li key={s.id} class="alert-item small" data-silence-id={s.id}>
              <div class="alert-line">
                <span>
                  {s.sensor_id} · {silenceScope(s)}
                </span>
                <span class="muted">
                  {inForce(s, now) ? 'in force' : s.ended_at ? 'ended early' : 'expired'}
                </span>
              </div>
              <div class="alert-line muted">
                <span>
                  by {s.created_by} at {formatDateTime(s.created_at)}, until {formatDateTime(s.until)}
                </span>
                {s.ended_at && (
                  <span>
                    ended by {s.ended_by ?? '?'} at {formatDateTime(s.ended_at)}
                  </span>
                )}
              </div>
              {s.reason && <p class="history-note">Reason: {s.reason}</p>}
            </li>
          ))}
        </ul>
      )}
    </details>
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
  const silence = svc.silences.covering(a);

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
    <li
      id={`alert-${String(a.id)}`}
      tabIndex={-1}
      class={`alert-item sev-${a.severity} alert-${a.state}${a.flapping ? ' flapping' : ''}${silence ? ' silenced' : ''}`}
      data-alert-id={String(a.id)}
      data-state={a.state}
    >
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
        {silence ? (
          <span class="state state-silenced" data-testid="alert-silenced" title={silence.reason || undefined}>
            {silencedText(silence)}
          </span>
        ) : (
          a.silence_id != null && <span class="state state-silenced">opened while silenced</span>
        )}
        {a.flapping && (
          <span class="state state-flapping" title="Kept open: it kept opening and resolving">
            flapping
          </span>
        )}
        <span class={`state state-${a.state}`}>
          {a.state === 'acknowledged'
            ? `ack'd by ${a.acked_by ?? '?'}`
            : a.state === 'resolved'
              ? `resolved by ${a.resolved_by ?? '?'}, not yet acknowledged`
              : a.state}
        </span>
      </div>
      <div class="alert-actions">
        <button type="button" onClick={() => onDiscuss(a)}>
          Discuss
        </button>
        {canAct && (a.state === 'open' || (a.state === 'resolved' && !a.acked_by)) && (
          <button type="button" disabled={busy} onClick={() => act('alert_ack', { alert_id: a.id })}>
            Acknowledge
          </button>
        )}
        {canAct && !resolving && a.state !== 'resolved' && (
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
          {a.state === 'resolved' && (
            <p class="small" role="status">
              It resolved by itself meanwhile ({a.resolved_by ?? 'system'}); your note is kept here: post it in Discuss
              or cancel.
            </p>
          )}
          <label for={noteId}>Resolution note</label>
          <input id={noteId} value={note} maxLength={500} onInput={(e) => setNote(e.currentTarget.value)} />
          <button type="submit" class="primary" disabled={busy || a.state === 'resolved'}>
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
