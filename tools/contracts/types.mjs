// Generates TypeScript types from the API contracts, for the dashboard's
// compile-time check (frontend/src/contracts/agree.ts) that
// frontend/src/types.ts says what docs/asyncapi.yaml and docs/openapi.yaml
// say:
//
//   frontend/src/contracts/ws.gen.ts    from docs/asyncapi.yaml
//   frontend/src/contracts/rest.gen.ts  from docs/openapi.yaml
//
// `node types.mjs` (make contract-types) writes both; check.mjs (make
// contracts) fails when the committed files differ from what this makes.
//
// The mapping is plain and total, so that any schema change shows up:
// every property is listed, optional unless `required`; an object without
// `properties` is a Record; enum and const become literal unions; oneOf and
// anyOf become unions; integer is number; formats are strings. A schema
// this cannot express faithfully (allOf, properties together with an
// additionalProperties schema, a required name that is not a property)
// is an error rather than a silent approximation.
import { readFile, writeFile } from 'node:fs/promises';
import yaml from 'js-yaml';

const docs = new URL('../../docs/', import.meta.url);
const out = new URL('../../frontend/src/contracts/', import.meta.url);

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

class SchemaError extends Error {}

/** Follows a local JSON pointer (#/a/b) in doc. */
function resolve(doc, ref) {
  if (!ref.startsWith('#/')) throw new SchemaError(`only local $ref are supported: ${ref}`);
  let cur = doc;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    cur = cur?.[part];
    if (cur === undefined) throw new SchemaError(`$ref ${ref} points nowhere`);
  }
  return cur;
}

const ident = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const key = (k) => (ident.test(k) ? k : JSON.stringify(k));

/** A union member that needs parentheses as an array element. */
const paren = (t) => (/[|&]/.test(t) ? `(${t})` : t);

function union(types) {
  const seen = [...new Set(types)];
  return seen.length === 0 ? 'never' : seen.join(' | ');
}

function comment(text, pad) {
  if (!text) return '';
  return `${pad}/** ${String(text).replace(/\s+/g, ' ').replaceAll('*/', '* /').trim()} */\n`;
}

/**
 * The TypeScript type of a JSON schema. doc is the whole document (for
 * $ref), at is where the schema sits (for error messages), depth the
 * indentation.
 */
function tsType(doc, schema, at, depth = 1) {
  if (depth > 40) throw new SchemaError(`${at}: nested too deep (a $ref cycle?)`);
  if (schema === true || schema === undefined) return 'unknown';
  if (schema === false) return 'never';
  if (typeof schema !== 'object' || schema === null) throw new SchemaError(`${at}: not a schema`);
  if (schema.$ref) {
    const m = /^#\/components\/schemas\/([^/]+)$/.exec(schema.$ref);
    if (m) {
      resolve(doc, schema.$ref); // must exist
      return `Schemas[${JSON.stringify(m[1].replaceAll('~1', '/').replaceAll('~0', '~'))}]`;
    }
    return tsType(doc, resolve(doc, schema.$ref), schema.$ref, depth);
  }
  if (schema.allOf) throw new SchemaError(`${at}: allOf is not supported; spell the object out`);
  if ('const' in schema) return JSON.stringify(schema.const);
  if (schema.enum) return union(schema.enum.map((v) => JSON.stringify(v)));
  const alts = schema.oneOf ?? schema.anyOf;
  if (alts) return union(alts.map((s, i) => tsType(doc, s, `${at}/oneOf/${i}`, depth)));
  let types = schema.type;
  if (types === undefined) {
    if (schema.properties || schema.additionalProperties !== undefined) types = 'object';
    else if (schema.items) types = 'array';
    else return 'unknown';
  }
  if (!Array.isArray(types)) types = [types];
  return union(
    types.map((t) => {
      switch (t) {
        case 'string':
          return 'string';
        case 'number':
        case 'integer':
          return 'number';
        case 'boolean':
          return 'boolean';
        case 'null':
          return 'null';
        case 'array':
          if (schema.prefixItems) throw new SchemaError(`${at}: prefixItems is not supported`);
          return schema.items ? `${paren(tsType(doc, schema.items, `${at}/items`, depth))}[]` : 'unknown[]';
        case 'object':
          return objectType(doc, schema, at, depth);
        default:
          throw new SchemaError(`${at}: unknown type ${t}`);
      }
    }),
  );
}

function objectType(doc, schema, at, depth) {
  const props = schema.properties ?? {};
  const names = Object.keys(props);
  const ap = schema.additionalProperties;
  const required = new Set(schema.required ?? []);
  for (const r of required) {
    if (!(r in props)) throw new SchemaError(`${at}: required ${r} is not among the properties`);
  }
  if (names.length === 0) {
    if (ap && typeof ap === 'object') return `Record<string, ${tsType(doc, ap, `${at}/additionalProperties`, depth)}>`;
    if (ap === false) return 'Record<string, never>';
    return 'Record<string, unknown>';
  }
  if (ap && typeof ap === 'object') {
    throw new SchemaError(`${at}: properties with an additionalProperties schema is not supported`);
  }
  const pad = '  '.repeat(depth);
  const lines = names.map((n) => {
    const p = props[n];
    const opt = required.has(n) ? '' : '?';
    return `${comment(p?.description, pad)}${pad}${key(n)}${opt}: ${tsType(doc, p, `${at}/properties/${n}`, depth + 1)};`;
  });
  return `{\n${lines.join('\n')}\n${'  '.repeat(depth - 1)}}`;
}

function header(source) {
  return `// Generated from docs/${source} by tools/contracts/types.mjs: do not edit.
// \`make contract-types\` rewrites it; \`make contracts\` fails when it is stale.
// frontend/src/contracts/agree.ts checks frontend/src/types.ts against it.
`;
}

function schemasBlock(doc) {
  const schemas = doc.components?.schemas ?? {};
  const lines = Object.entries(schemas).map(
    ([n, s]) => `${comment(s.description, '  ')}  ${key(n)}: ${tsType(doc, s, `#/components/schemas/${n}`, 2)};`,
  );
  return `/** components/schemas, by name. */\nexport interface Schemas {\n${lines.join('\n')}\n}\n`;
}

function mapBlock(name, what, entries) {
  const lines = entries.map(([k, t, desc]) => `${comment(desc, '  ')}  ${key(k)}: ${t};`);
  return `/** ${what} */\nexport interface ${name} {\n${lines.join('\n')}\n}\n`;
}

/** ws.gen.ts: the data of every message, by direction and type. */
export function wsTypes(doc) {
  const client = [];
  const server = [];
  for (const [opName, op] of Object.entries(doc.operations ?? {})) {
    const dst = op.action === 'receive' ? client : op.action === 'send' ? server : null;
    if (!dst) throw new SchemaError(`operation ${opName}: action must be send or receive`);
    for (const ref of op.messages ?? []) {
      const chanMsg = resolve(doc, ref.$ref);
      const where = chanMsg.$ref ?? ref.$ref;
      const msg = chanMsg.$ref ? resolve(doc, chanMsg.$ref) : chanMsg;
      const payload = msg.payload?.$ref ? resolve(doc, msg.payload.$ref) : msg.payload;
      const type = payload?.properties?.type?.const ?? msg.name;
      if (typeof type !== 'string') throw new SchemaError(`${where}: no payload type const and no name`);
      if (dst.some(([t]) => t === type)) throw new SchemaError(`${where}: type ${type} twice in ${opName}`);
      const data = payload?.properties?.data;
      let t = 'undefined';
      if (data !== undefined) {
        t = tsType(doc, data, `${where}/payload/properties/data`, 2);
        if (!(payload.required ?? []).includes('data')) t += ' | undefined';
      }
      dst.push([type, t, msg.summary]);
    }
  }
  const byType = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return (
    header('asyncapi.yaml') +
    '\n' +
    schemasBlock(doc) +
    '\n' +
    mapBlock('ClientData', 'The `data` of every message a client sends, by `type` (undefined: no data).', client.sort(byType)) +
    '\n' +
    mapBlock('ServerData', 'The `data` of every message the server sends, by `type` (undefined: no data).', server.sort(byType))
  );
}

/** The JSON schema of a response or request body, $ref followed. */
function jsonBody(doc, node) {
  const r = node?.$ref ? resolve(doc, node.$ref) : node;
  return r?.content?.['application/json']?.schema;
}

/** rest.gen.ts: the JSON bodies of every route, the shared Error aside. */
export function restTypes(doc) {
  const responses = [];
  const requests = [];
  const errorRef = '#/components/schemas/Error';
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const route = `${m.toUpperCase()} ${path}`;
      const at = `#/paths/${path.replaceAll('~', '~0').replaceAll('/', '~1')}/${m}`;
      const bodies = [];
      for (const [status, resp] of Object.entries(op.responses ?? {})) {
        const s = jsonBody(doc, resp);
        if (s === undefined || s.$ref === errorRef) continue;
        bodies.push(tsType(doc, s, `${at}/responses/${status}`, 2));
      }
      if (bodies.length) responses.push([route, union(bodies), op.summary]);
      const req = jsonBody(doc, op.requestBody);
      if (req !== undefined) {
        let t = tsType(doc, req, `${at}/requestBody`, 2);
        const body = op.requestBody.$ref ? resolve(doc, op.requestBody.$ref) : op.requestBody;
        if (!body.required) t += ' | undefined';
        requests.push([route, t, op.summary]);
      }
    }
  }
  return (
    header('openapi.yaml') +
    '\n' +
    schemasBlock(doc) +
    '\n' +
    mapBlock(
      'RestResponses',
      'The JSON bodies of every route, by "METHOD path", every status but those of the shared Error schema.',
      responses,
    ) +
    '\n' +
    mapBlock('RestRequests', 'The JSON request body of every route that takes one, by "METHOD path".', requests)
  );
}

/** Both files, by name, from the documents in docs/. */
export async function generate() {
  const load = async (name) => yaml.load(await readFile(new URL(name, docs), 'utf8'));
  return {
    'ws.gen.ts': wsTypes(await load('asyncapi.yaml')),
    'rest.gen.ts': restTypes(await load('openapi.yaml')),
  };
}

/**
 * Compares the committed files with fresh ones; returns the names of the
 * stale ones (empty: in step).
 */
export async function stale() {
  const files = await generate();
  const bad = [];
  for (const [name, text] of Object.entries(files)) {
    const have = await readFile(new URL(name, out), 'utf8').catch(() => '');
    if (have !== text) bad.push(`frontend/src/contracts/${name}`);
  }
  return bad;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    for (const [name, text] of Object.entries(await generate())) {
      await writeFile(new URL(name, out), text);
      console.log(`wrote frontend/src/contracts/${name}`);
    }
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    console.error(`types.mjs: ${e.message}`);
    process.exit(1);
  }
}
