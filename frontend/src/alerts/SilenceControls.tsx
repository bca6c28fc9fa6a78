import { useState } from 'preact/hooks';
import { errorText } from '../common/format';
import { useObservable } from '../common/hooks';
import { useServices } from '../services';
import { type NewSilence, type RuleKind, type Silence, roleAtLeast } from '../types';
import { silenceScope, silencedText } from './silences';

interface Props {
  sensorId: string;
  metric: string;
}

/** How long a new silence lasts: the presets, in seconds, and "until" (a time typed in). */
const DURATIONS: { value: string; label: string; seconds?: number }[] = [
  { value: '900', label: '15 minutes', seconds: 900 },
  { value: '3600', label: '1 hour', seconds: 3600 },
  { value: '28800', label: '8 hours', seconds: 28800 },
  { value: '86400', label: '24 hours', seconds: 86400 },
  { value: 'until', label: 'until a time…' },
];

/**
 * The silences in force of one sensor, and for operators and admins the
 * form to silence it (the whole sensor or one rule of the metric on
 * screen) and a button to end each early (docs/alerts.md#silences).
 */
export function SilenceControls({ sensorId, metric }: Props) {
  const svc = useServices();
  useObservable(svc.silences.changed);
  const canSilence = roleAtLeast(svc.me?.role, 'operator');
  const list = svc.silences.ofSensor(sensorId);

  return (
    <section class="silences" aria-labelledby="silences-title" data-testid="silences">
      <h3 id="silences-title">Silences</h3>
      <p class="muted small">
        While silenced, alerts are still detected and stored, marked silenced; they are not announced or counted.
      </p>
      {list.length === 0 ? (
        <p class="muted small" data-testid="not-silenced">
          {sensorId} is not silenced.
        </p>
      ) : (
        <ul class="silence-list" aria-label={`Silences of ${sensorId} in force`}>
          {list.map((s) => (
            <SilenceItem key={s.id} silence={s} canEnd={canSilence} />
          ))}
        </ul>
      )}
      {canSilence ? (
        <SilenceForm sensorId={sensorId} metric={metric} />
      ) : (
        <p class="muted small" data-testid="silence-readonly">
          Silencing needs the operator role; you are {svc.me?.role ?? 'signed in'}.
        </p>
      )}
    </section>
  );
}

function SilenceItem({ silence: s, canEnd }: { silence: Silence; canEnd: boolean }) {
  const svc = useServices();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const end = async () => {
    setBusy(true);
    setError('');
    try {
      await svc.silences.end(s.id);
    } catch (err) {
      setError(`Could not end it: ${errorText(err)}`);
      void svc.silences.load(); // it may have ended meanwhile
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class="silence-item" data-testid="silence" data-silence-id={s.id}>
      <span class="badge silenced">silenced</span> <span>{silenceScope(s)}</span>{' '}
      <span data-testid="silence-text">{silencedText(s)}</span>
      {s.reason && <span class="muted"> — {s.reason}</span>}
      {canEnd && (
        <button type="button" class="small" disabled={busy} onClick={() => void end()}>
          End now
        </button>
      )}
      {error && (
        <span class="error small" role="alert">
          {' '}
          {error}
        </span>
      )}
    </li>
  );
}

function SilenceForm({ sensorId, metric }: Props) {
  const svc = useServices();
  const [what, setWhat] = useState('sensor');
  const [duration, setDuration] = useState('3600');
  const [until, setUntil] = useState('');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [done, setDone] = useState('');

  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    setDone('');
    const body: NewSilence = { sensor_id: sensorId, reason: reason.trim() };
    if (what !== 'sensor') {
      body.metric = metric;
      body.kind = what as RuleKind;
    }
    const preset = DURATIONS.find((d) => d.value === duration);
    if (preset?.seconds) body.duration_seconds = preset.seconds;
    else {
      // datetime-local is the browser's local time without a zone.
      const t = until ? new Date(until) : null;
      if (!t || Number.isNaN(t.getTime())) {
        setError('Choose the date and time the silence ends.');
        return;
      }
      body.until = t.toISOString();
    }
    setBusy(true);
    try {
      const s = await svc.silences.create(body);
      setDone(`Silenced: ${silenceScope(s)}, ${silencedText(s)}.`);
      setReason('');
    } catch (err) {
      setError(`Not silenced: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };

  const invalid = error ? { 'aria-invalid': true, 'aria-describedby': 'silence-error' } : {};
  return (
    <form class="silence-form" onSubmit={(e) => void submit(e)}>
      <label for="silence-what">Silence</label>
      <select id="silence-what" value={what} onChange={(e) => setWhat(e.currentTarget.value)}>
        <option value="sensor">the whole sensor {sensorId}</option>
        <option value="threshold">{metric} threshold only</option>
        <option value="spike">{metric} spike only</option>
        <option value="stale">{metric} offline only</option>
      </select>
      <label for="silence-for">for</label>
      <select id="silence-for" value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
        {DURATIONS.map((d) => (
          <option key={d.value} value={d.value}>
            {d.label}
          </option>
        ))}
      </select>
      {duration === 'until' && (
        <>
          <label for="silence-until">Ends at</label>
          <input id="silence-until" type="datetime-local" value={until} onInput={(e) => setUntil(e.currentTarget.value)} {...invalid} />
        </>
      )}
      <label for="silence-reason">Reason (optional)</label>
      <input id="silence-reason" maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} {...invalid} />
      <button type="submit" class="primary" disabled={busy}>
        Silence
      </button>
      {error && (
        <p id="silence-error" class="error small" role="alert" data-testid="silence-error">
          {error}
        </p>
      )}
      <p class="muted small" role="status">
        {done}
      </p>
    </form>
  );
}
