import { useLayoutEffect, useRef } from 'preact/hooks';
import { robustRange } from './series';
import { SPARK_WINDOW_MS, type Ring } from './store';
import type { SparkHost } from './sparkhost';
import { effectiveTheme } from '../shell/theme';

interface Props {
  ring: Ring;
  /** Changes whenever the ring does: the only reason to redraw. */
  version: number;
  tone: 'normal' | 'stale' | 'warning' | 'critical';
  host: SparkHost;
  /** The tile is on screen (or near it): only then is it drawn. */
  visible: boolean;
}

// Logical size; CSS stretches the width to the tile.
const W = 160;
const H = 32;

/**
 * A canvas sparkline of up to five minutes before the newest point. It
 * redraws only when its data changed and its tile is on screen; the time
 * axis is anchored on the newest point, so a silent sensor costs nothing.
 */
export function Sparkline({ ring, version, tone, host, visible }: Props) {
  const ref = useRef<HTMLCanvasElement>(null);

  useLayoutEffect(() => {
    const canvas = ref.current;
    if (!canvas || !visible) return;
    draw(canvas, ring, tone, host);
  }, [version, visible, tone, ring, host]);

  return <canvas ref={ref} class="spark" width={W} height={H} aria-hidden="true" />;
}

function draw(canvas: HTMLCanvasElement, ring: Ring, tone: Props['tone'], host: SparkHost): void {
  const dpr = Math.min(3, globalThis.devicePixelRatio || 1);
  const pw = Math.round(W * dpr);
  const ph = Math.round(H * dpr);
  if (canvas.width !== pw || canvas.height !== ph) {
    canvas.width = pw;
    canvas.height = ph;
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  const n = ring.length;
  if (n === 0) return;
  const tMax = ring.timeAt(n - 1);
  let first = n - 1;
  while (first > 0 && ring.timeAt(first - 1) >= tMax - SPARK_WINDOW_MS) first--;
  // Up to five minutes; less while a sensor has not been seen that long.
  const tMin = Math.min(ring.timeAt(first), tMax - 1000);
  const spanT = tMax - tMin;
  // Robust range: a spike does not flatten the normal variation; points
  // outside are drawn at the edge with a dot.
  const vals: number[] = [];
  for (let i = first; i < n; i++) vals.push(ring.valueAt(i));
  const r = robustRange(vals);
  if (!r) return;
  const { lo, hi } = r;
  const span = hi - lo || Math.abs(hi) || 1;
  const pad = 3;
  const x = (t: number) => ((t - tMin) / spanT) * W;
  const yRaw = (v: number) => H - pad - ((v - lo) / span) * (H - 2 * pad) - (hi === lo ? (H - 2 * pad) / 2 : 0);
  const y = (v: number) => Math.min(H - 1, Math.max(1, yRaw(v)));
  // A gap in the data is a gap in the line: more than five times the mean
  // step between readings (and at least 5 s).
  const gapMs = Math.max(5000, (5 * spanT) / Math.max(1, n - first - 1));
  const colourNow = colour(canvas, tone, host);
  ctx.lineWidth = 1.5;
  ctx.lineJoin = 'round';
  ctx.strokeStyle = colourNow;
  ctx.fillStyle = colourNow;
  ctx.beginPath();
  ctx.moveTo(x(ring.timeAt(first)), y(ring.valueAt(first)));
  for (let i = first + 1; i < n; i++) {
    const t = ring.timeAt(i);
    if (t - ring.timeAt(i - 1) > gapMs) ctx.moveTo(x(t), y(ring.valueAt(i)));
    else ctx.lineTo(x(t), y(ring.valueAt(i)));
  }
  if (n - first === 1) ctx.lineTo(W, y(ring.valueAt(first)));
  ctx.stroke();
  if (r.clipped) {
    for (let i = first; i < n; i++) {
      const v = ring.valueAt(i);
      if (v < lo || v > hi) ctx.fillRect(x(ring.timeAt(i)) - 1.5, y(v) - 1.5, 3, 3);
    }
  }
}

// The canvas takes its stroke from the CSS colour of the tile, so themes
// stay in the stylesheet. Reading computed style is costly: cache per
// tone and colour scheme.
function colour(canvas: HTMLCanvasElement, tone: string, host: SparkHost): string {
  const cache = host.colours;
  const dark = effectiveTheme() === 'dark' ? 'd' : 'l';
  const key = tone + dark;
  let c = cache.get(key);
  if (!c) {
    c = getComputedStyle(canvas).color || '#3b82f6';
    cache.set(key, c);
  }
  return c;
}
