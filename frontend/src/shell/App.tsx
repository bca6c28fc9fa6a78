import { useCallback, useEffect, useState } from 'preact/hooks';
import { AlertsPanel } from '../alerts/AlertsPanel';
import { ChatPanel } from '../chat/ChatPanel';
import { plural } from '../common/format';
import { useEmitter, useObservable } from '../common/hooks';
import { SensorDetail } from '../sensors/SensorDetail';
import { SensorGrid } from '../sensors/SensorGrid';
import { useServices } from '../services';
import type { Alert } from '../types';
import { ConnectionStatus } from './ConnectionStatus';
import { LiveRegion } from './LiveRegion';
import { Login } from './Login';
import { effectiveTheme, toggleTheme } from './theme';

export function App() {
  const svc = useServices();
  useObservable(svc.authChanged);
  if (!svc.loggedIn) return <Login />;
  if (!svc.me) {
    return (
      <main class="login">
        <p class="muted" role="status">
          Loading…
        </p>
      </main>
    );
  }
  return <Dashboard />;
}

type Tab = 'sensors' | 'alerts' | 'chat';

/** The open sensor lives in the URL hash (#/sensor/ID/METRIC): back button and links work. */
function parseHash(): { sensorId: string; metric: string } | null {
  const m = /^#\/sensor\/([^/]+)\/([^/]+)$/.exec(location.hash);
  if (!m) return null;
  try {
    return { sensorId: decodeURIComponent(m[1]), metric: decodeURIComponent(m[2]) };
  } catch {
    return null;
  }
}

function Dashboard() {
  const svc = useServices();
  useObservable(svc.alerts.changed);
  useEmitter(svc.ws.statusChanged);
  const [tab, setTab] = useState<Tab>('sensors');
  const [open, setOpen] = useState(parseHash);

  useEffect(() => {
    const onHash = () => setOpen(parseHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const unseen = svc.alerts.unseenCritical;
  useEffect(() => {
    document.title = unseen > 0 ? `(${unseen}) Watchroom` : 'Watchroom';
  }, [unseen]);

  const openSensor = useCallback((sensorId: string, metric: string) => {
    location.hash = `#/sensor/${encodeURIComponent(sensorId)}/${encodeURIComponent(metric)}`;
    setTab('sensors');
  }, []);
  const closeSensor = useCallback(() => {
    if (parseHash()) history.pushState(null, '', location.pathname + location.search);
    setOpen(null);
  }, []);
  const discuss = useCallback((a: Alert) => {
    svc.chat.select('alerts', String(a.id));
    setTab('chat');
    document.getElementById('chat-input')?.focus();
  }, []);
  const showAlerts = () => {
    setTab('alerts');
    svc.alerts.markSeen();
    document.getElementById('alerts-panel')?.scrollIntoView({ block: 'nearest' });
  };
  // Paused only once live updates ran: the first connect after login is
  // not a loss (no half-second "Live updates paused" flash).
  const st = svc.ws.status;
  const ever = everConnected(st);
  const showStale = st.state !== 'connected' && (ever || st.attempt > 0);

  return (
    <div class="app" data-tab={tab}>
      <LiveRegion />
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <h1 class="brand">Watchroom</h1>
        <ConnectionStatus />
        <button
          type="button"
          class={`alert-badge${unseen > 0 ? ' active' : ''}`}
          onClick={showAlerts}
          aria-label={`${plural(svc.alerts.counted.length, 'alert')} needing attention${unseen > 0 ? `, ${unseen} new critical` : ''}`}
          title="Alerts needing attention: open, acknowledged, or resolved by themselves and not yet acknowledged; silenced ones are not counted"
          data-testid="alert-badge"
        >
          <span aria-hidden="true">⚠</span> {svc.alerts.counted.length}
        </button>
        <span class="spacer" />
        <span class="who small">
          {svc.me?.user} <span class="muted">({svc.me?.role})</span>
        </span>
        <ThemeToggle />
        <button type="button" onClick={() => void svc.logout()}>
          Log out
        </button>
      </header>
      <nav class="tabs" aria-label="Panels">
        {(['sensors', 'alerts', 'chat'] as Tab[]).map((t) => (
          <button
            type="button"
            key={t}
            class={tab === t ? 'selected' : ''}
            aria-pressed={tab === t}
            onClick={() => (t === 'alerts' ? showAlerts() : setTab(t))}
          >
            {t === 'sensors' ? 'Sensors' : t === 'alerts' ? `Alerts (${svc.alerts.counted.length})` : 'Chat'}
          </button>
        ))}
      </nav>
      <main id="main" class="layout">
        <section class="panel sensors-panel" aria-label="Sensors">
          {showStale && (
            <p class="stale-banner" role="status">
              Live updates paused: values may be stale until the connection is back.
            </p>
          )}
          {open ? (
            <SensorDetail key={open.sensorId + '/' + open.metric} {...open} onBack={closeSensor} />
          ) : (
            <SensorGrid onOpen={openSensor} />
          )}
        </section>
        <section class="panel alerts-panel" id="alerts-panel" aria-label="Alerts">
          <AlertsPanel onDiscuss={discuss} onOpenSensor={openSensor} />
        </section>
        <section class="panel chat-panel" aria-label="Chat">
          <ChatPanel />
        </section>
      </main>
    </div>
  );
}

let connectedOnce = false;

/** Whether this page has had a live connection since it loaded. */
function everConnected(st: { state: string }): boolean {
  if (st.state === 'connected') connectedOnce = true;
  return connectedOnce;
}

/** Dark/light switch; the choice is remembered (shell/theme.ts). */
function ThemeToggle() {
  const [theme, setTheme] = useState(effectiveTheme);
  const next = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="theme-toggle"
      aria-pressed={theme === 'dark'}
      title={`Switch to the ${next} theme`}
      onClick={() => setTheme(toggleTheme())}
      data-testid="theme-toggle"
    >
      Dark theme
    </button>
  );
}
