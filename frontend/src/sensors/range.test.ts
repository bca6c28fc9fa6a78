import { describe, expect, it } from 'vitest';
import { RANGES, robustRange, summarize } from './series';

describe('robustRange', () => {
  it('keeps normal variation visible despite a spike, and says it clipped', () => {
    const v = Array.from({ length: 200 }, (_, i) => 20 + Math.sin(i / 5));
    v[100] = 500;
    const r = robustRange(v)!;
    expect(r.clipped).toBe(true);
    expect(r.hi).toBeLessThan(25);
    expect(r.lo).toBeGreaterThan(18);
  });
  it('shows everything when nothing is far out', () => {
    const r = robustRange([1, 2, 3, 4, 5])!;
    expect(r.clipped).toBe(false);
    expect(r.lo).toBeLessThanOrEqual(1);
    expect(r.hi).toBeGreaterThanOrEqual(5);
  });
  it('ignores gaps (NaN, null)', () => {
    expect(robustRange([NaN, NaN])).toBeNull();
    expect(robustRange([3, NaN, 3])!.clipped).toBe(false);
  });
});

describe('summarize', () => {
  it('says low, high and latest with the unit', () => {
    expect(summarize([[1, 5, 3]], '°C', String)).toBe('Lowest 1 °C, highest 5 °C, latest 3 °C.');
    expect(summarize([[]], '', String)).toBe('No readings in this range.');
  });
});

describe('RANGES', () => {
  it('offers 30 days and 1 year in whole-hour buckets within the server limit of 5000', () => {
    for (const key of ['30d', '1y']) {
      const r = RANGES.find((x) => x.key === key)!;
      expect(r).toBeDefined();
      expect(r.bucketMs! % 3_600_000).toBe(0);
      expect(r.ms / r.bucketMs!).toBeLessThanOrEqual(5000);
    }
  });
});
