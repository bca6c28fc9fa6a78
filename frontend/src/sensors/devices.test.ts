import { describe, expect, it } from 'vitest';
import { registeredIds } from './devices';

describe('registeredIds', () => {
  it('keeps active devices only', () => {
    const d = (id: string, active: boolean) => ({ id, active, created_by: 'ada', created_at: '', revoked_at: active ? null : 'x' });
    expect([...registeredIds({ devices: [d('s-1', true), d('s-2', false), d('s-3', true)] })]).toEqual(['s-1', 's-3']);
  });

  it('takes a bare list and survives an empty answer', () => {
    expect(registeredIds([]).size).toBe(0);
    expect(registeredIds({}).size).toBe(0);
    expect(registeredIds(null).size).toBe(0);
  });
});
