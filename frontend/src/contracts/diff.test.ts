// The checks of contracts/diff.ts are types: these tests run in
// `npm run typecheck` (expectTypeOf fails to compile on a wrong type);
// vitest only sees them pass. They pin what agree.ts relies on: every
// kind of drift between types.ts and a contract yields a message naming
// it, and equal shapes spelled differently yield none.
import { describe, expectTypeOf, it } from 'vitest';
import type { Diff } from './diff';
import type { Agreement } from './agree';

interface Base {
  id: number;
  name: string;
  note?: string;
  at: string | null;
  tags: string[];
  inner: { a: number; b?: 'x' | 'y' };
}

describe('Diff', () => {
  it('is never for the same shape, however spelled', () => {
    type Spelled = Omit<Base & { extra: 1 }, 'extra'>;
    expectTypeOf<Diff<Spelled, Base, 'T'>>().toEqualTypeOf<never>();
    expectTypeOf<Diff<{ a: Record<string, number> }, { a: { [k: string]: number } }, 'T'>>().toEqualTypeOf<never>();
    expectTypeOf<Diff<{ x?: number }, { x?: number | undefined }, 'T'>>().toEqualTypeOf<never>();
  });

  it('names a field on one side only', () => {
    expectTypeOf<Diff<Base & { seq?: number }, Base, 'T'>>().toEqualTypeOf<'T.seq: only in types.ts'>();
    expectTypeOf<Diff<Omit<Base, 'name'>, Base, 'T'>>().toEqualTypeOf<'T.name: only in the schema'>();
  });

  it('names a field optional on one side only', () => {
    type Loose = Omit<Base, 'id'> & { id?: number };
    expectTypeOf<Diff<Loose, Base, 'T'>>().toEqualTypeOf<'T.id: optional in types.ts, required in the schema'>();
    type Strict = Omit<Base, 'note'> & { note: string };
    expectTypeOf<Diff<Strict, Base, 'T'>>().toEqualTypeOf<'T.note: required in types.ts, optional in the schema'>();
  });

  it('names a field of another type, however deep', () => {
    type Wider = Omit<Base, 'id'> & { id: number | string };
    expectTypeOf<Diff<Wider, Base, 'T'>>().toEqualTypeOf<'T.id: types differ'>();
    type NotNull = Omit<Base, 'at'> & { at: string };
    expectTypeOf<Diff<NotNull, Base, 'T'>>().toEqualTypeOf<'T.at: types differ'>();
    type Deep = Omit<Base, 'inner'> & { inner: { a: number; b?: 'x' } };
    expectTypeOf<Diff<Deep, Base, 'T'>>().toEqualTypeOf<'T.inner.b: types differ'>();
    type Items = Omit<Base, 'tags'> & { tags: { t: string }[] };
    expectTypeOf<Diff<Items, Base, 'T'>>().toEqualTypeOf<'T.tags[]: types differ'>();
    expectTypeOf<Diff<{ l: { a: 1 }[] }, { l: { a: 2 }[] }, 'T'>>().toEqualTypeOf<'T.l[].a: types differ'>();
  });

  it('names a required field that may be undefined on one side', () => {
    expectTypeOf<Diff<{ d: number | undefined }, { d: number }, 'T'>>().toEqualTypeOf<'T.d: may be undefined on one side only'>();
  });

  it('names message types and routes on one side only', () => {
    type Ts = { reading: { v: number }; shout: { v: number } };
    type Contract = { reading: { v: number }; whisper: { v: number } };
    expectTypeOf<Diff<Ts, Contract, 'ServerData'>>().toEqualTypeOf<
      'ServerData.shout: only in types.ts' | 'ServerData.whisper: only in the schema'
    >();
  });
});

describe('agree.ts', () => {
  it('holds: types.ts agrees with both contracts', () => {
    expectTypeOf<Agreement[number]>().toEqualTypeOf<{}>();
  });
});
