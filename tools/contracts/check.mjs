// Validates the API contracts with maintained validators:
// docs/asyncapi.yaml with the AsyncAPI parser (3.x, Node 20), and
// docs/openapi.yaml with @seriousme/openapi-schema-validator (the
// OpenAPI 3.1 JSON schema); then checks that the TypeScript generated from
// them for the dashboard (frontend/src/contracts/*.gen.ts, types.mjs) is
// current. Whether the real server conforms is checked by
// cmd/watchroom/contracts_test.go, whether the dashboard's types.ts agrees
// by its type check (frontend/src/contracts/agree.ts). Exit 1 on any error.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import { stale } from './types.mjs';

const root = new URL('../../docs/', import.meta.url);
let failed = false;

const asyncapi = await readFile(new URL('asyncapi.yaml', root), 'utf8');
const { document, diagnostics } = await new Parser().parse(asyncapi);
// Severity 0 is an error; warnings and hints are printed, not fatal.
for (const d of diagnostics) {
  const where = d.path.join('/');
  console.log(`asyncapi.yaml ${d.severity === 0 ? 'error' : 'note'}: ${where}: ${d.message}`);
  if (d.severity === 0) failed = true;
}
if (!document) failed = true;
else console.log(`asyncapi.yaml: AsyncAPI ${document.version()}, ${document.allMessages().length} messages`);

const openapi = await readFile(new URL('openapi.yaml', root), 'utf8');
const v = new Validator();
const res = await v.validate(openapi);
if (!res.valid) {
  failed = true;
  console.log('openapi.yaml errors:', JSON.stringify(res.errors, null, 2));
} else {
  console.log(`openapi.yaml: OpenAPI ${v.version}, ${Object.keys(v.specification.paths).length} paths`);
}
try {
  const old = await stale();
  for (const f of old) console.log(`${f} is stale: run \`make contract-types\` and commit it`);
  if (old.length) failed = true;
  else console.log('frontend/src/contracts/*.gen.ts: current');
} catch (e) {
  console.log(`types.mjs: ${e.message}`);
  failed = true;
}
process.exit(failed ? 1 : 0);
