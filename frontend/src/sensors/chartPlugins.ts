// uPlot plugins of the detail chart: spikes cut by the robust y range
// marked at the edge, alert and command markers on the time axis, and
// shift+drag to pan. Each reads what it draws through a getter, so the
// chart controller changes it without rebuilding the plot.

import type uPlot from 'uplot';
import { type ChartEvent, placeMarkers } from './chartModel';

/**
 * Marks the points of the given series that lie outside their y scale (cut
 * by the robust range) with a small triangle at the edge they cross, as the
 * sparklines mark them with a dot.
 */
export function clipMarksPlugin(seriesIdxs: () => readonly number[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        const size = 4 * devicePixelRatio;
        const xs = u.data[0];
        const xMin = u.scales.x.min ?? -Infinity;
        const xMax = u.scales.x.max ?? Infinity;
        ctx.save();
        for (const i of seriesIdxs()) {
          const s = u.series[i];
          if (!s?.show || !s.scale) continue;
          const sc = u.scales[s.scale];
          if (sc.min == null || sc.max == null) continue;
          const ys = u.data[i] as (number | null | undefined)[];
          ctx.fillStyle = typeof s.stroke === 'function' ? (s.stroke(u, i) as string) : String(s.stroke ?? '#c00');
          for (let j = 0; j < ys.length; j++) {
            const v = ys[j];
            if (v == null || (v >= sc.min && v <= sc.max) || xs[j] < xMin || xs[j] > xMax) continue;
            const x = u.valToPos(xs[j], 'x', true);
            const up = v > sc.max;
            const y = up ? top : top + height;
            ctx.beginPath();
            // A triangle pointing out of the plot: the value is beyond it.
            ctx.moveTo(x - size, up ? y + size * 1.6 : y - size * 1.6);
            ctx.lineTo(x + size, up ? y + size * 1.6 : y - size * 1.6);
            ctx.lineTo(x, y);
            ctx.closePath();
            ctx.fill();
          }
        }
        ctx.restore();
      },
    },
  };
}

/**
 * Alert and command markers: a dashed vertical line per event on the
 * canvas, and a small marker at the foot of the plot with the events as its
 * tooltip (the chart's text alternative lists them for screen readers).
 * Events closer than a few pixels share a marker.
 */
export function markersPlugin(events: () => readonly ChartEvent[], colours: { alert: string; command: string }): uPlot.Plugin {
  let layer: HTMLDivElement | null = null;
  return {
    hooks: {
      init: (u) => {
        layer = document.createElement('div');
        layer.className = 'chart-markers';
        layer.setAttribute('aria-hidden', 'true');
        u.over.appendChild(layer);
      },
      draw: (u) => {
        const xMin = u.scales.x.min;
        const xMax = u.scales.x.max;
        if (!layer || xMin == null || xMax == null) return;
        const widthCss = u.bbox.width / devicePixelRatio;
        const groups = placeMarkers(events(), xMin * 1000, xMax * 1000, widthCss);
        const ctx = u.ctx;
        const { left, top, height } = u.bbox;
        ctx.save();
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.lineWidth = devicePixelRatio;
        for (const g of groups) {
          const x = Math.round(left + g.x * devicePixelRatio) + 0.5;
          ctx.strokeStyle = g.events.some((e) => e.kind === 'alert') ? colours.alert : colours.command;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.restore();
        layer.replaceChildren(
          ...groups.map((g) => {
            const m = document.createElement('span');
            const kinds = new Set(g.events.map((e) => e.kind));
            const sev = g.events.find((e) => e.kind === 'alert')?.severity;
            m.className = `chart-marker ${kinds.has('alert') ? 'marker-alert' : 'marker-command'}${sev ? ` marker-${sev}` : ''}`;
            m.style.left = `${g.x}px`;
            m.title = g.events.map((e) => `${new Date(e.t).toLocaleString()}: ${e.label}`).join('\n');
            m.dataset.kind = [...kinds].join(' ');
            m.dataset.ids = g.events.map((e) => e.id).join(' ');
            m.textContent = kinds.has('alert') ? '!' : '▲';
            return m;
          }),
        );
      },
      destroy: () => {
        layer?.remove();
        layer = null;
      },
    },
  };
}

/**
 * Shift+drag pans the time axis: the window moves with the pointer and is
 * applied on release (onPan gets the milliseconds to move by, negative to
 * go back in time). A plain drag stays uPlot's zoom selection.
 */
export function shiftPanPlugin(onPan: (ms: number) => void): uPlot.Plugin {
  let cleanup: (() => void) | null = null;
  return {
    hooks: {
      init: (u) => {
        const down = (e: MouseEvent) => {
          if (!e.shiftKey || e.button !== 0 || !u.over.contains(e.target as Node)) return;
          // Caught on the way down, before uPlot's own mousedown on the
          // plot area starts a selection.
          e.stopPropagation();
          e.preventDefault();
          const x0 = e.clientX;
          const up = (ev: MouseEvent) => {
            document.removeEventListener('mouseup', up);
            const w = u.over.clientWidth;
            const min = u.scales.x.min;
            const max = u.scales.x.max;
            if (w <= 0 || min == null || max == null) return;
            const dx = ev.clientX - x0;
            if (Math.abs(dx) < 3) return;
            // Dragging right brings earlier times into view.
            onPan((-dx / w) * (max - min) * 1000);
          };
          document.addEventListener('mouseup', up);
        };
        u.root.addEventListener('mousedown', down, true);
        cleanup = () => u.root.removeEventListener('mousedown', down, true);
      },
      destroy: () => {
        cleanup?.();
        cleanup = null;
      },
    },
  };
}
