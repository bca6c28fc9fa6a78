// Validates the API contracts with maintained validators:
// docs/asyncapi.yaml with the AsyncAPI parser (3.x, Node 20), and
// docs/openapi.yaml with @seriousme/openapi-schema-validator (the
// OpenAPI 3.1 JSON schema). Whether the real server conforms is checked
// by cmd/watchroom/contracts_test.go. Exit 1 on any error.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';

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
process.exit(failed ? 1 : 0);
