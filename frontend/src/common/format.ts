// Formatting of values, times and ages for display. Pure functions.

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Natural order: s-2 before s-10. */
export function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}

/** A reading's value with a sensible number of digits for its magnitude. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const abs = Math.abs(v);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return v.toFixed(digits);
}

/** "4 s", "3 min", "2 h", "5 d": how long ago, compact. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

// One clock for the whole screen: 24-hour HH:MM:SS, with the date in front
// only when it is not today (chat, alerts, commands and the chart's hover
// all use these two functions).
const TIME: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' };

/** "1 member", "2 members". */
export function plural(n: number, word: string, many = word + 's'): string {
  return `${n} ${n === 1 ? word : many}`;
}

/** Local time of day, with seconds: "14:03:07". */
export function formatTime(ts: number | string): string {
  const d = new Date(typeof ts === 'string' ? Date.parse(ts) : ts);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString(undefined, TIME);
}

/** formatTime, with the date before it when it is not today: "Mar 3, 14:03:07". */
export function formatDateTime(ts: number | string, now = Date.now()): string {
  const d = new Date(typeof ts === 'string' ? Date.parse(ts) : ts);
  if (Number.isNaN(d.getTime())) return '';
  if (d.toDateString() === new Date(now).toDateString()) return formatTime(d.getTime());
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })}, ${formatTime(d.getTime())}`;
}

export function parseTs(ts: string | undefined | null): number {
  if (!ts) return NaN;
  return Date.parse(ts);
}

/** Error to a short human sentence. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
