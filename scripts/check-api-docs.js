#!/usr/bin/env node
/*
 * `npm run docs:check` (part of `npm run lint`, so CI runs it): every symbol a lib exports from its
 * src/index.ts has a doc comment. TypeDoc writes the JSON model of the packages typedoc.json lists
 * (what `npm run docs` renders); a top-level export, or a member of an exported namespace, without a
 * comment on itself or on one of its signatures is listed and the check fails (a class or interface
 * whose only comment is the one TypeDoc copies from its base class or implemented interface counts
 * as undocumented). Members of classes and interfaces are not required (their names and types carry
 * most of their meaning). A package's own description is its index.ts header comment, tagged
 * `@packageDocumentation`.
 *
 * A package's index.ts must have that header (without the tag TypeDoc hands the comment to the
 * first export statement, which then looks documented). TypeDoc runs with --skipErrorChecking
 * (`npm run lint` type-checks separately). `--options FILE` checks the packages another typedoc.json
 * lists (the checker's own test uses it).
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

// TypeDoc's ReflectionKind values
const KIND = { 4: 'namespace', 8: 'enum', 32: 'variable', 64: 'function', 128: 'class', 256: 'interface', 2097152: 'type alias' };
const REFERENCE = 4194304; // `export { x as y }` of something documented elsewhere

// TypeDoc's ReflectionKind.Module: with several entry packages the model holds one per package;
// with a single one the model is that package.
const MODULE = 2;
const packagesOf = (model) => {
  const children = model.children ?? [];
  return children.length > 0 && children.every((c) => c.kind === MODULE) ? children : [model];
};

/** The exported symbols of a TypeDoc JSON model that have no doc comment of their own, as `package: name (kind)`. */
function findUndocumented(model) {
  // Every reflection by id, to recognise a comment TypeDoc copied from a base class or an
  // implemented interface (a class with no comment of its own shows its parent's).
  const byId = new Map();
  (function index(r) {
    byId.set(r.id, r);
    for (const c of r.children ?? []) index(c);
  })(model);
  const summary = (comment) => JSON.stringify(comment.summary ?? []);
  const inherited = (r) =>
    [...(r.extendedTypes ?? []), ...(r.implementedTypes ?? [])].some((t) => {
      const parent = typeof t.target === 'number' ? byId.get(t.target) : undefined;
      return Boolean(parent?.comment) && summary(parent.comment) === summary(r.comment);
    });
  const documented = (r) =>
    (Boolean(r.comment) && !inherited(r)) || (r.signatures ?? []).some((s) => s.comment) || Boolean(r.getSignature?.comment);

  const missing = [];
  for (const pkg of packagesOf(model)) {
    if (!pkg.comment) missing.push(`${pkg.name}: its index.ts header (a doc comment tagged @packageDocumentation)`);
  }
  const visit = (pkg, refl, prefix) => {
    for (const c of refl.children ?? []) {
      if (c.kind === REFERENCE) continue;
      const name = prefix + c.name;
      if (!documented(c)) missing.push(`${pkg}: ${name} (${KIND[c.kind] ?? `kind ${c.kind}`})`);
      if (c.kind === 4) visit(pkg, c, `${name}.`);
    }
  };
  for (const pkg of packagesOf(model)) visit(pkg.name, pkg, '');
  return missing;
}

/**
 * TypeDoc's JSON model of the packages a typedoc.json (default the repository's) lists under
 * `entryPoints` (package folders, entry `packageOptions.entryPoints[0]`, default src/index.ts).
 * All entries are converted in one TypeScript program (`entryPointStrategy: resolve`), about three
 * times faster than one program per package as `npm run docs` does; the comments are the same.
 * Each package of the model is renamed to its package.json name.
 */
function typedocModel(options) {
  const root = path.resolve(__dirname, '..');
  const optionsFile = path.resolve(options ?? path.join(root, 'typedoc.json'));
  const cfg = JSON.parse(fs.readFileSync(optionsFile, 'utf8'));
  const base = path.dirname(optionsFile);
  const entry = cfg.packageOptions?.entryPoints?.[0] ?? 'src/index.ts';
  const packages = (cfg.entryPoints ?? []).map((dir) => {
    const abs = path.resolve(base, dir);
    return { name: JSON.parse(fs.readFileSync(path.join(abs, 'package.json'), 'utf8')).name, entry: path.join(abs, entry) };
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-api-'));
  const out = path.join(tmp, 'api.json');
  const baseConfig = path.join(base, 'tsconfig.base.json');
  const tsconfig = {
    ...(fs.existsSync(baseConfig) ? { extends: baseConfig } : {}),
    compilerOptions: {
      noEmit: true,
      composite: false,
      incremental: false,
      declaration: false,
      declarationMap: false,
      skipLibCheck: true,
      typeRoots: [path.join(root, 'node_modules', '@types')],
      types: ['node'],
    },
    files: packages.map((p) => p.entry),
  };
  fs.writeFileSync(path.join(tmp, 'tsconfig.json'), JSON.stringify(tsconfig));
  const typedoc = path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc');
  const args = [
    typedoc,
    ...['--entryPointStrategy', 'resolve', ...packages.flatMap((p) => ['--entryPoints', p.entry])],
    ...['--tsconfig', path.join(tmp, 'tsconfig.json'), '--json', out, '--name', 'api'],
    ...['--skipErrorChecking', '--excludePrivate', '--excludeInternal', '--logLevel', 'Error'],
  ];
  try {
    // run in the temporary folder, so that no typedoc.json there adds options
    const res = spawnSync(process.execPath, args, { cwd: tmp, encoding: 'utf8' });
    if (res.status !== 0 || !fs.existsSync(out)) {
      throw new Error(`${res.stdout}${res.stderr}\ndocs:check: typedoc failed (exit ${res.status})`);
    }
    const model = JSON.parse(fs.readFileSync(out, 'utf8'));
    // modules are named by their folder relative to the entries' common folder, e.g. libs/core/src
    const mods = packagesOf(model);
    if (mods.length === 1 && packages.length === 1) mods[0].name = packages[0].name;
    else for (const m of mods) m.name = packages.find((p) => path.dirname(p.entry).endsWith(path.sep + m.name))?.name ?? m.name;
    return model;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const i = process.argv.indexOf('--options');
  let model;
  try {
    model = typedocModel(i >= 0 ? process.argv[i + 1] : undefined);
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  }
  const missing = findUndocumented(model);
  if (missing.length) {
    process.stderr.write(`docs:check: ${missing.length} exported symbol(s) without a doc comment:\n${missing.map((m) => `  ${m}`).join('\n')}\n`);
    process.exit(1);
  }
  const packages = packagesOf(model);
  const count = packages.reduce((n, p) => n + (p.children ?? []).length, 0);
  console.log(`docs:check: every one of ${count} exported symbols of ${packages.length} packages is documented`);
}

module.exports = { findUndocumented };
