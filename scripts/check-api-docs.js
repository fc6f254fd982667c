#!/usr/bin/env node
/*
 * `npm run docs:check` (part of `npm run lint`, so CI runs it): every symbol a lib exports from its
 * src/index.ts has a doc comment. TypeDoc (typedoc.json, the same model `npm run docs` renders)
 * writes its JSON model; a top-level export, or a function of an exported namespace, without a
 * comment on itself or on one of its signatures is listed and the check fails. Members of classes
 * and interfaces are not required (their names and types carry most of their meaning).
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-api-')), 'api.json');
const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
const res = spawnSync(process.execPath, [typedoc, '--json', out], { cwd: root, encoding: 'utf8' });
if (res.status !== 0 || !fs.existsSync(out)) {
  process.stderr.write(`${res.stdout}${res.stderr}\ndocs:check: typedoc failed (exit ${res.status})\n`);
  process.exit(1);
}
const model = JSON.parse(fs.readFileSync(out, 'utf8'));
fs.rmSync(path.dirname(out), { recursive: true, force: true });

// TypeDoc's ReflectionKind values
const KIND = { 4: 'namespace', 8: 'enum', 32: 'variable', 64: 'function', 128: 'class', 256: 'interface', 2097152: 'type alias' };
const REFERENCE = 4194304; // `export { x as y }` of something documented elsewhere

const documented = (r) => Boolean(r.comment) || (r.signatures ?? []).some((s) => s.comment) || (r.getSignature && r.getSignature.comment);

const missing = [];
function visit(pkg, refl, prefix) {
  for (const c of refl.children ?? []) {
    if (c.kind === REFERENCE) continue;
    const name = prefix + c.name;
    if (!documented(c)) missing.push(`${pkg}: ${name} (${KIND[c.kind] ?? `kind ${c.kind}`})`);
    if (c.kind === 4) visit(pkg, c, `${name}.`);
  }
}
for (const pkg of model.children ?? []) visit(pkg.name, pkg, '');

if (missing.length) {
  process.stderr.write(`docs:check: ${missing.length} exported symbol(s) without a doc comment:\n${missing.map((m) => `  ${m}`).join('\n')}\n`);
  process.exit(1);
}
const count = (model.children ?? []).reduce((n, p) => n + (p.children ?? []).length, 0);
console.log(`docs:check: every one of ${count} exported symbols of ${model.children.length} packages is documented`);
