// types.ts against the contracts, at compile time (`npm run typecheck`,
// part of `make test`). Each line holds one side of types.ts to its
// counterpart generated from docs/asyncapi.yaml (ws.gen.ts) or
// docs/openapi.yaml (rest.gen.ts) by tools/contracts/types.mjs. When they
// differ the compiler names each difference, for example:
//
//   Type '{ "ServerData.reading.seq: only in types.ts": true; }' does not satisfy
//   the constraint 'Record<string, never>'.
//
// Message types and routes are compared as key sets (a message or route on
// one side only is reported), then every field: name, optional or
// required, and type (integer is number, enums are literal unions, a
// nullable field is `T | null`). Fix whichever side is wrong about the
// server (cmd/watchroom/contracts_test.go holds the contracts to the real
// server), run `make contract-types` if a contract changed, and check
// again. Nothing here reaches the bundle.
import type { Diff } from './diff';
import type * as WS from './ws.gen';
import type * as REST from './rest.gen';
import type { ClientData, MsgId, RestError, RestRequests, RestResponses, ServerData } from '../types';

// Each difference becomes a key of an object that must be empty: the
// compiler then lists them all, not only the first.
type Agree<D extends Record<string, never>> = D;

export type Agreement = [
  Agree<{ [K in Diff<ClientData, WS.ClientData, 'ClientData'>]: true }>,
  Agree<{ [K in Diff<ServerData, WS.ServerData, 'ServerData'>]: true }>,
  Agree<{ [K in Diff<MsgId, WS.Schemas['RequestID'], 'MsgId'>]: true }>,
  Agree<{ [K in Diff<RestResponses, REST.RestResponses, 'RestResponses'>]: true }>,
  Agree<{ [K in Diff<RestRequests, REST.RestRequests, 'RestRequests'>]: true }>,
  Agree<{ [K in Diff<RestError, REST.Schemas['Error'], 'RestError'>]: true }>,
];
