// Threshold limits drawn on the detail chart: a uPlot plugin that draws
// the threshold rule's min and max as dashed horizontal lines on the
// canvas (draw hook) and names each with a label in the plot's overlay
// (text the page and its tests can read). A limit outside the drawn range
// is named at the edge it lies beyond. The plugin also widens the chart's
// y range to take in a limit near the data (within one data range of
// it), so the operator sees the headroom; a far-away limit would squash
// the normal variation, so it is only named at the edge. The limits
// change without the chart being rebuilt: set() rescales and redraws
// every chart the plugin is on.

import type uPlot from 'uplot';

export interface Limits {
  min?: number;
  max?: number;
}

const SIDES = ['min', 'max'] as const;

/**
 * The range r widened to take in each limit that lies within one span of
 * it, with a little room beyond the line for its label.
 */
export function widen(r: uPlot.Range.MinMax, limits: Limits): uPlot.Range.MinMax {
  let [lo, hi] = r;
  if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) return r;
  const span = Math.max(hi - lo, Number.EPSILON);
  for (const v of [limits.min, limits.max]) {
    if (v === undefined || !Number.isFinite(v)) continue;
    if (v < lo && v >= lo - span) lo = v - 0.05 * span;
    if (v > hi && v <= hi + span) hi = v + 0.05 * span;
  }
  return [lo, hi];
}

export class ThresholdLines {
  private limits: Limits = {};
  private readonly plots = new Set<uPlot>();

  /** Replaces the limits and redraws the charts. */
  set(limits: Limits): void {
    if (limits.min === this.limits.min && limits.max === this.limits.max) return;
    this.limits = { ...limits };
    // setData with the same data runs the scales' range functions again.
    for (const u of this.plots) u.setData(u.data);
  }

  /** The plugin for one chart; unit goes into the labels. */
  plugin(unit: string): uPlot.Plugin {
    const labels = new Map<uPlot, Record<(typeof SIDES)[number], HTMLElement>>();
    return {
      // Wraps the y scale's range (the chart's own, robust one) so that it
      // takes in near limits.
      opts: (_u, opts) => {
        const y = (opts.scales ??= {}).y ?? {};
        const base = y.range;
        opts.scales.y = {
          ...y,
          range: (u: uPlot, dmin: number, dmax: number, key: string): uPlot.Range.MinMax => {
            const r: uPlot.Range.MinMax =
              typeof base === 'function' ? base(u, dmin, dmax, key) : Array.isArray(base) ? base : [dmin, dmax];
            return widen(r, this.limits);
          },
        };
      },
      hooks: {
        init: [
          (u) => {
            this.plots.add(u);
            const make = (side: string) => {
              const el = document.createElement('span');
              el.className = `threshold-label threshold-${side}`;
              el.dataset.testid = `threshold-${side}`;
              el.hidden = true;
              u.over.appendChild(el);
              return el;
            };
            labels.set(u, { min: make('min'), max: make('max') });
          },
        ],
        destroy: [
          (u) => {
            this.plots.delete(u);
            labels.delete(u);
          },
        ],
        draw: [
          (u) => {
            const els = labels.get(u);
            if (els) this.draw(u, els, unit);
          },
        ],
      },
    };
  }

  private draw(u: uPlot, els: Record<(typeof SIDES)[number], HTMLElement>, unit: string): void {
    const { left, top, width, height } = u.bbox; // canvas pixels
    const ctx = u.ctx;
    const color = getComputedStyle(u.root).getPropertyValue('--crit').trim() || '#b4231b';
    for (const side of SIDES) {
      const v = this.limits[side];
      const el = els[side];
      if (v === undefined || !Number.isFinite(v)) {
        el.hidden = true;
        delete el.dataset.value;
        continue;
      }
      const y = u.valToPos(v, 'y', true);
      const where = y < top ? 'above' : y > top + height ? 'below' : 'inside';
      if (where === 'inside') {
        ctx.save();
        ctx.strokeStyle = color;
        ctx.lineWidth = Math.max(1, devicePixelRatio);
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.beginPath();
        ctx.moveTo(left, Math.round(y) + 0.5);
        ctx.lineTo(left + width, Math.round(y) + 0.5);
        ctx.stroke();
        ctx.restore();
      }
      // The overlay is in CSS pixels, from the plot area's top left.
      const cssY = u.valToPos(v, 'y');
      const plotH = u.over.clientHeight;
      const text = `${side} ${v}${unit ? ' ' + unit : ''}`;
      el.textContent = where === 'above' ? `${text} ↑` : where === 'below' ? `${text} ↓` : text;
      el.dataset.value = String(v);
      el.dataset.where = where;
      // Above its line (below it for min, so the two never cover each other when close).
      const at = Math.min(Math.max(cssY, 0), plotH);
      el.style.top = `${side === 'max' ? Math.max(0, at - 18) : Math.min(plotH - 18, at + 2)}px`;
      el.hidden = false;
    }
  }
}
