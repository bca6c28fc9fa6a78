// The sensor grid's filter and order. Pure, so it is unit tested alone;
// the choice is kept in localStorage so it survives a reload.

import { naturalCompare } from '../common/format';

export type SortKey = 'name' | 'severity';

export interface GridPrefs {
  filter: string;
  /** Terms must equal a whole sensor id, metric or unit: "s-1" does not match "s-10". */
  whole: boolean;
  sort: SortKey;
}

const KEY = 'watchroom.grid';
const DEFAULTS: GridPrefs = { filter: '', whole: false, sort: 'name' };

export function loadGridPrefs(): GridPrefs {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<GridPrefs>;
    return {
      filter: typeof v.filter === 'string' ? v.filter : '',
      whole: v.whole === true,
      sort: v.sort === 'severity' ? 'severity' : 'name',
    };
  } catch {
    return { ...DEFAULTS };
  }
}

export function saveGridPrefs(p: GridPrefs): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(p));
  } catch {
    // no storage: the choice lasts for this page
  }
}

/** Whether a tile matches every term of the filter. */
export function matches(filter: string, whole: boolean, fields: string[]): boolean {
  const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const fs = fields.map((f) => f.toLowerCase());
  return terms.every((t) => (whole ? fs.includes(t) : fs.some((f) => f.includes(t))));
}

const RANK: Record<string, number> = { critical: 0, warning: 1 };

/** Severity first (critical, warning, stale, the rest), then natural name order. */
export function compareTiles(
  sort: SortKey,
  a: { name: string; severity?: string; stale: boolean },
  b: { name: string; severity?: string; stale: boolean },
): number {
  if (sort === 'severity') {
    const ra = RANK[a.severity ?? ''] ?? (a.stale ? 2 : 3);
    const rb = RANK[b.severity ?? ''] ?? (b.stale ? 2 : 3);
    if (ra !== rb) return ra - rb;
  }
  return naturalCompare(a.name, b.name);
}
