// The colour theme: the system's (prefers-color-scheme) unless the user
// picked one with the header toggle; the choice is kept in localStorage.
// Always applied as html[data-theme] (the stylesheet's one switch), before
// the first render so nothing flashes, and again when the system changes.

export type Theme = 'light' | 'dark';

const KEY = 'watchroom.theme';

function systemDark(): boolean {
  return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
}

/** The theme chosen by the user, or null to follow the system. */
export function savedTheme(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : null;
  } catch {
    return null;
  }
}

/** The theme in effect now. */
export function effectiveTheme(): Theme {
  const t = document.documentElement.dataset.theme;
  if (t === 'light' || t === 'dark') return t;
  return systemDark() ? 'dark' : 'light';
}

/** Applies the saved theme, or the system's; follows the system while nothing is saved. */
export function initTheme(): void {
  const apply = () => {
    document.documentElement.dataset.theme = savedTheme() ?? (systemDark() ? 'dark' : 'light');
  };
  apply();
  globalThis.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', apply);
}

/** Switches to the other theme and remembers it. */
export function toggleTheme(): Theme {
  const next: Theme = effectiveTheme() === 'dark' ? 'light' : 'dark';
  document.documentElement.dataset.theme = next;
  try {
    localStorage.setItem(KEY, next);
  } catch {
    // no storage: the choice lasts for this page
  }
  return next;
}
