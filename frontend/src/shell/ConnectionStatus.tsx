import { useEmitter, useObservable } from '../common/hooks';
import { useServices } from '../services';

/** Always visible: connected / connecting / reconnecting in N s / offline. */
export function ConnectionStatus() {
  const svc = useServices();
  useEmitter(svc.ws.statusChanged);
  useObservable(svc.clock);
  const st = svc.ws.status;
  let label: string;
  let tone: 'ok' | 'warn' | 'bad';
  switch (st.state) {
    case 'connected':
      label = 'Connected';
      tone = 'ok';
      break;
    case 'connecting':
      label = st.attempt > 0 ? 'Reconnecting…' : 'Connecting…';
      tone = 'warn';
      break;
    case 'reconnecting': {
      const secs = Math.max(0, Math.ceil(((st.retryAt ?? 0) - Date.now()) / 1000));
      // Refused for the connections this user holds elsewhere (other tabs):
      // say so, or the user only sees a dashboard that will not connect.
      label =
        st.refused === 'too_many_connections'
          ? `Too many open connections (close other tabs); retrying in ${secs} s`
          : `Reconnecting in ${secs} s`;
      tone = st.refused ? 'bad' : 'warn';
      break;
    }
    default:
      label = 'Offline';
      tone = 'bad';
  }
  return (
    <div class={`conn conn-${tone}`} data-state={st.state} data-refused={st.refused} data-testid="conn-status">
      <span class="conn-dot" aria-hidden="true" />
      {/* The countdown changes every second: announce the state, not each tick. */}
      <span aria-hidden="true">{label}</span>
      <span class="sr-only" role="status">
        {st.state === 'connected'
          ? 'Connected'
          : st.state === 'offline'
            ? 'Offline'
            : st.refused === 'too_many_connections'
              ? 'Too many open connections; reconnecting'
              : 'Reconnecting'}
      </span>
      {st.state === 'reconnecting' && (
        <button type="button" class="link-button" onClick={() => svc.ws.reconnectNow()}>
          Retry now
        </button>
      )}
    </div>
  );
}
