import { describe, expect, it } from 'vitest';
import { compareTiles, matches } from './filter';

describe('sensor filter', () => {
  it('matches parts of names unless whole ids are asked for', () => {
    expect(matches('s-1', false, ['s-10', 'temperature', '°C'])).toBe(true);
    expect(matches('s-1', true, ['s-10', 'temperature', '°C'])).toBe(false);
    expect(matches('s-1 temperature', true, ['s-1', 'temperature', '°C'])).toBe(true);
    expect(matches('', true, ['s-1'])).toBe(true);
  });
  it('sorts by severity, then stale, then name', () => {
    const t = [
      { name: 's-10', stale: false },
      { name: 's-2', stale: true },
      { name: 's-3', severity: 'warning', stale: false },
      { name: 's-9', severity: 'critical', stale: false },
    ];
    expect([...t].sort((a, b) => compareTiles('severity', a, b)).map((x) => x.name)).toEqual(['s-9', 's-3', 's-2', 's-10']);
    expect([...t].sort((a, b) => compareTiles('name', a, b)).map((x) => x.name)).toEqual(['s-2', 's-3', 's-9', 's-10']);
  });
});
