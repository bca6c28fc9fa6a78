import { useEffect, useState } from 'preact/hooks';
import { useServices } from '../services';

/**
 * What a screen reader says without the user looking: new alerts and new
 * chat messages in the room on screen. Two off-screen live regions, set
 * anew for each event (the last few lines kept so a burst is not lost);
 * critical alerts go to the assertive one.
 */
export function LiveRegion() {
  const svc = useServices();
  const [polite, setPolite] = useState<string[]>([]);
  const [urgent, setUrgent] = useState('');
  useEffect(() => {
    const say = (line: string) => setPolite((prev) => [...prev.slice(-2), line]);
    const offAlert = svc.alerts.newAlert.on((a) => {
      const line = `New ${a.severity} alert: ${a.sensor_id} ${a.metric}, ${a.kind}`;
      if (a.severity === 'critical') setUrgent(line);
      else say(line);
    });
    const offChat = svc.chat.spoken.on((m) => say(`${m.user} in #${m.room}: ${m.content}`));
    return () => {
      offAlert();
      offChat();
    };
  }, [svc]);
  return (
    <>
      <div class="sr-only" role="log" aria-live="polite" data-testid="live-polite">
        {polite.map((l, i) => (
          <p key={i}>{l}</p>
        ))}
      </div>
      <div class="sr-only" role="alert" aria-live="assertive" data-testid="live-urgent">
        {urgent}
      </div>
    </>
  );
}
