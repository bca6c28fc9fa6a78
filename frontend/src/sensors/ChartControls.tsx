import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { formatDateTime } from '../common/format';
import { type View, LIVE, panView, parseCustomRange, toLocalInput, viewWindow } from './chartModel';
import { overlayColour } from './chartController';
import type { RangeDef } from './series';

interface Props {
  view: View;
  def: RangeDef;
  onView: (v: View) => void;
  metric: string;
  unit: string;
  /** The sensor's other metrics that can be overlaid, with their units. */
  others: { metric: string; unit: string }[];
  overlays: string[];
  onOverlays: (metrics: string[]) => void;
}

/**
 * The detail chart's controls: the window shown (pan, reset zoom, custom
 * range) and the metrics overlaid, which doubles as the chart's legend.
 * Drag on the chart zooms; shift+drag pans.
 */
export function ChartControls({ view, def, onView, metric, unit, others, overlays, onOverlays }: Props) {
  const now = Date.now();
  const [from, to] = viewWindow(view, def.ms, now);
  const [fromText, setFromText] = useState(toLocalInput(from));
  const [toText, setToText] = useState(toLocalInput(to));
  const [error, setError] = useState<{ text: string; field: 'from' | 'to' } | null>(null);
  const [adding, setAdding] = useState('');

  // The inputs show the window in view after each zoom or pan.
  useEffect(() => {
    const [f, t] = viewWindow(view, def.ms, Date.now());
    setFromText(toLocalInput(f));
    setToText(toLocalInput(t));
  }, [view, def.key]);

  const apply = (e: Event) => {
    e.preventDefault();
    const r = parseCustomRange(fromText, toText, Date.now());
    if ('error' in r) {
      setError({ text: r.error, field: r.field });
      return;
    }
    setError(null);
    onView(r.view);
  };

  const addable = others.filter((o) => !overlays.includes(o.metric));
  const live = view.kind === 'live';
  const atNow = live || to >= now - 1000;

  return (
    <div class="chart-controls">
      <div class="chart-window" role="group" aria-label="Time window">
        <button type="button" aria-label="Earlier: move back half a window" title="Earlier" onClick={() => onView(panView(view, def.ms, Date.now(), -1))}>
          ←
        </button>
        <button
          type="button"
          aria-label="Later: move forward half a window"
          title="Later"
          disabled={atNow}
          onClick={() => onView(panView(view, def.ms, Date.now(), 1))}
        >
          →
        </button>
        {!live && (
          <button type="button" data-testid="reset-zoom" onClick={() => onView(LIVE)}>
            Reset zoom
          </button>
        )}
        <span class="muted small" data-testid="chart-window">
          {live ? `Live, last ${def.label}. Drag on the chart to zoom, shift+drag to pan.` : `${formatDateTime(from)} – ${formatDateTime(to)}`}
        </span>
      </div>
      <details class="custom-range" open={error !== null ? true : undefined}>
        <summary
          onClick={(e) => {
            // Opening: start from the window in view now. On the click (a
            // key press on the summary clicks it too), not on the toggle
            // event, which comes a task later and would undo what was
            // typed in between.
            if ((e.currentTarget.parentElement as HTMLDetailsElement).open || error) return;
            const [f, t] = viewWindow(view, def.ms, Date.now());
            setFromText(toLocalInput(f));
            setToText(toLocalInput(t));
          }}
        >
          Custom range
        </summary>
        <form onSubmit={apply} noValidate>
          {(['from', 'to'] as const).map((f) => (
            <Fragment key={f}>
              <label for={`range-${f}`}>{f === 'from' ? 'From' : 'To'}</label>
              <input
                id={`range-${f}`}
                type="datetime-local"
                step={1}
                value={f === 'from' ? fromText : toText}
                aria-invalid={error?.field === f ? 'true' : undefined}
                aria-describedby={error ? 'range-error' : undefined}
                onInput={(e) => (f === 'from' ? setFromText : setToText)(e.currentTarget.value)}
              />
            </Fragment>
          ))}
          <button type="submit">Show range</button>
          {error && (
            <p id="range-error" class="error small" role="alert">
              {error.text}
            </p>
          )}
        </form>
      </details>
      <ul class="chart-legend" aria-label="Metrics drawn">
        <li>
          <span class="swatch" style={{ background: 'var(--accent)' }} aria-hidden="true" />
          {metric}
          {unit && ` (${unit})`}
        </li>
        {overlays.map((m, i) => {
          const u = others.find((o) => o.metric === m)?.unit ?? '';
          return (
            <li key={m} data-overlay={m}>
              <span class="swatch" style={{ background: overlayColour(i) }} aria-hidden="true" />
              {m}
              {u && ` (${u})`}
              <button type="button" class="chip-x" aria-label={`Remove ${m} from the chart`} onClick={() => onOverlays(overlays.filter((x) => x !== m))}>
                ×
              </button>
            </li>
          );
        })}
        {addable.length > 0 && (
          <li class="overlay-add">
            <label for="overlay-metric" class="small">
              Overlay
            </label>
            <select id="overlay-metric" value={adding} onChange={(e) => setAdding(e.currentTarget.value)}>
              <option value="">another metric…</option>
              {addable.map((o) => (
                <option key={o.metric} value={o.metric}>
                  {o.metric}
                  {o.unit ? ` (${o.unit})` : ''}
                </option>
              ))}
            </select>
            <button
              type="button"
              disabled={!adding}
              onClick={() => {
                if (adding && !overlays.includes(adding)) onOverlays([...overlays, adding]);
                setAdding('');
              }}
            >
              Add
            </button>
          </li>
        )}
      </ul>
    </div>
  );
}
