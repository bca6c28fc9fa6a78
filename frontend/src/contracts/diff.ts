// Type-level comparison of two types, for contracts/agree.ts: Diff<A, B, P>
// is never when A and B are the same type, and otherwise a union of
// messages naming each place they differ, as paths from P:
//
//   "ServerData.reading.seq: only in types.ts"
//   "ServerData.alert.event_id: optional in types.ts, required in the schema"
//   "RestResponses.GET /api/me.role: types differ"
//
// A = types.ts, B = the contract. Only types exist here: nothing in this
// file reaches the bundle.

/** True when the compiler holds A and B to be the same type. */
export type Identical<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/**
 * T with every object spelled out (aliases, Omit and intersections
 * flattened), so that two spellings of one shape compare identical.
 */
type Norm<T> = T extends readonly (infer E)[] ? Norm<E>[] : T extends object ? { [K in keyof T]: Norm<T[K]> } : T;

type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;

/** An object type that is neither an array nor a union. */
type IsObject<T> = [T] extends [readonly unknown[]]
  ? false
  : [T] extends [object]
    ? true extends IsUnion<T>
      ? false
      : true
    : false;

type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];

type Opt<T, K> = K extends OptionalKeys<T> ? 'optional' : 'required';

export type Diff<A, B, P extends string> =
  true extends Identical<Norm<A>, Norm<B>>
    ? never
    : [A, B] extends [readonly (infer EA)[], readonly (infer EB)[]]
      ? Diff<EA, EB, `${P}[]`>
      : [IsObject<A>, IsObject<B>] extends [true, true]
        ? ObjectDiff<A, B, P>
        : `${P}: types differ`;

type ObjectDiff<A, B, P extends string> = {
  [K in keyof A | keyof B]-?: K extends string
    ? string extends K
      ? Diff<A[K & keyof A], B[K & keyof B], `${P}[string]`>
      : K extends keyof A
        ? K extends keyof B
          ? Opt<A, K> extends Opt<B, K>
            ? Diff<Exclude<A[K], undefined>, Exclude<B[K], undefined>, `${P}.${K}`> | UndefinedDiff<A, B, K, P>
            : `${P}.${K}: ${Opt<A, K>} in types.ts, ${Opt<B, K>} in the schema`
          : `${P}.${K}: only in types.ts`
        : `${P}.${K}: only in the schema`
    : never;
}[keyof A | keyof B];

/** A required field that may be undefined on one side only. */
type UndefinedDiff<A, B, K extends keyof A & keyof B & string, P extends string> =
  Opt<A, K> extends 'optional'
    ? never
    : [undefined extends A[K] ? 1 : 0] extends [undefined extends B[K] ? 1 : 0]
      ? never
      : `${P}.${K}: may be undefined on one side only`;
