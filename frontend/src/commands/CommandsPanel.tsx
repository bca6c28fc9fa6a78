import { useEffect, useRef, useState } from 'preact/hooks';
import { formatDateTime, formatTime } from '../common/format';
import { useEmitter, useObservable } from '../common/hooks';
import { useServices } from '../services';
import { ACTIONS, type ActionDef, type LocalStatus, type SentCommand } from './store';

/** When it was asked for, sent (when it was held first) and answered. */
export function commandTimes(c: SentCommand): string {
  const parts = [`asked ${formatTime(c.requestedAt)}`];
  if (c.sentAt !== undefined && c.wasHeld) parts.push(`sent ${formatTime(c.sentAt)}`);
  if (c.answeredAt !== undefined) parts.push(`answered ${formatTime(c.answeredAt)}`);
  return parts.join(' · ');
}

const STATUS_TEXT: Record<LocalStatus, string> = {
  held: 'held (typed offline)',
  discarded: 'discarded',
  pending: 'pending…',
  success: 'success',
  error: 'error',
  timeout: 'timeout',
};

/** Command buttons (with confirmation), outcomes, and the sensor's command history. */
export function CommandsPanel({ sensorId }: { sensorId: string }) {
  const svc = useServices();
  useObservable(svc.commands.changed);
  useEmitter(svc.ws.statusChanged);
  const [confirming, setConfirming] = useState<ActionDef | null>(null);
  const [param, setParam] = useState('');
  const dialogRef = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    void svc.commands.loadHistory(sensorId);
  }, [sensorId]);

  useEffect(() => {
    const d = dialogRef.current;
    if (!d) return;
    if (confirming && !d.open) d.showModal?.();
    if (!confirming && d.open) d.close();
  }, [confirming]);

  const sent = svc.commands.sentFor(sensorId);
  const hist = svc.commands.historyFor(sensorId);
  const offline = svc.ws.status.state !== 'connected';

  const choose = (a: ActionDef) => {
    if (!a.confirm) {
      svc.commands.send(sensorId, a.action);
      return;
    }
    setParam(a.param ? String(a.param.initial) : '');
    setConfirming(a);
  };
  const confirm = () => {
    if (!confirming) return;
    const p = confirming.param;
    if (p) {
      const v = Number(param);
      if (!Number.isFinite(v) || v < p.min || v > p.max) return;
      svc.commands.send(sensorId, confirming.action, { [p.name]: v });
    } else {
      svc.commands.send(sensorId, confirming.action);
    }
    setConfirming(null);
  };

  return (
    <section class="commands" aria-labelledby="commands-title">
      <h3 id="commands-title">Commands</h3>
      <div class="command-buttons">
        {ACTIONS.map((a) => (
          <button type="button" key={a.action} onClick={() => choose(a)} data-action={a.action}>
            {a.label}
          </button>
        ))}
        {offline && (
          <span class="muted small" data-testid="commands-offline">
            Offline: a command is held and you will be asked again when the connection is back.
          </span>
        )}
      </div>
      <dialog ref={dialogRef} class="confirm" aria-labelledby="confirm-title" onClose={() => setConfirming(null)}>
        {confirming && (
          <form method="dialog" onSubmit={(e) => (e.preventDefault(), confirm())}>
            <h4 id="confirm-title">
              {confirming.label} {sensorId}?
            </h4>
            <p>{confirming.description}</p>
            {confirming.param && (
              <p class="dialog-field">
                <label for="command-param">{confirming.param.label}</label>
                <input
                  id="command-param"
                  type="number"
                  required
                  min={confirming.param.min}
                  max={confirming.param.max}
                  step={confirming.param.step}
                  value={param}
                  onInput={(e) => setParam(e.currentTarget.value)}
                />
              </p>
            )}
            <p class="muted small">
              Sends <code>{confirming.action}</code> to device {sensorId}.
            </p>
            <div class="dialog-buttons">
              <button type="button" onClick={() => setConfirming(null)}>
                Cancel
              </button>
              <button type="submit" class="primary" autofocus>
                Send {confirming.label.toLowerCase()}
              </button>
            </div>
          </form>
        )}
      </dialog>
      {sent.length > 0 && (
        <ul class="sent" aria-label="Commands sent from this page" aria-live="polite">
          {sent.map((c) => (
            <li key={c.reqId} class={`cmd-${c.status}`} data-testid="command-outcome" data-status={c.status}>
              <span class="cmd-action">{c.action}</span>
              <span class={`status status-${c.status}`}>{STATUS_TEXT[c.status]}</span>
              {c.latencyMs !== undefined && c.latencyMs !== null && (
                <span class="muted small">{Math.round(c.latencyMs)} ms</span>
              )}
              {c.message && <span class="muted small">{c.message}</span>}
              <span class="muted small" data-testid="command-times">
                {commandTimes(c)}
              </span>
              {c.status === 'held' &&
                (offline ? (
                  <span class="muted small">waiting for the connection</span>
                ) : (
                  <span class="held-ask" role="group" aria-label={`Held ${c.action}: send it now?`}>
                    <span class="small">Connection is back. Send {c.action} now?</span>
                    <button type="button" class="primary" data-testid="held-send" onClick={() => svc.commands.sendHeld(c)}>
                      Send now
                    </button>
                    <button type="button" data-testid="held-discard" onClick={() => svc.commands.discard(c)}>
                      Discard
                    </button>
                  </span>
                ))}
            </li>
          ))}
        </ul>
      )}
      <h4>History</h4>
      {hist?.error && <p class="error">{hist.error}</p>}
      {hist && !hist.error && hist.records.length === 0 && !hist.loading && (
        <p class="muted small">No commands sent to this sensor yet.</p>
      )}
      {hist && hist.records.length > 0 && (
        <div class="table-wrap">
          <table class="history">
            <thead>
              <tr>
                <th scope="col">Sent</th>
                <th scope="col">Answered</th>
                <th scope="col">Action</th>
                <th scope="col">By</th>
                <th scope="col">Status</th>
                <th scope="col">Latency</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {hist.records.slice(0, 20).map((r, i) => (
                // Viewers and analysts get no command_id (docs/protocol.md#commands).
                <tr key={r.command_id ?? `${r.issued_at}-${i}`}>
                  <td>{formatDateTime(r.issued_at)}</td>
                  <td>{r.responded_at ? formatDateTime(r.responded_at) : ''}</td>
                  <td>{r.action}</td>
                  <td>{r.issued_by}</td>
                  <td>
                    <span class={`status status-${r.status}`}>{r.status}</span>
                  </td>
                  <td>{r.latency_ms !== undefined && r.latency_ms !== null ? `${Math.round(r.latency_ms)} ms` : ''}</td>
                  <td>{r.message ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
