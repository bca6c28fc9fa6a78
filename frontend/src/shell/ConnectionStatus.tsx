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
      label = `Reconnecting in ${secs} s`;
      tone = 'warn';
      break;
    }
    default:
      label = 'Offline';
      tone = 'bad';
  }
  return (
    <div class={`conn conn-${tone}`} data-state={st.state} data-testid="conn-status">
      <span class="conn-dot" aria-hidden="true" />
      {/* The countdown changes every second: announce the state, not each tick. */}
      <span aria-hidden="true">{label}</span>
      <span class="sr-only" role="status">
        {st.state === 'connected' ? 'Connected' : st.state === 'offline' ? 'Offline' : 'Reconnecting'}
      </span>
      {st.state === 'reconnecting' && (
        <button type="button" class="link-button" onClick={() => svc.ws.reconnectNow()}>
          Retry now
        </button>
      )}
    </div>
  );
}
