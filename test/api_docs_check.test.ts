/**
 * scripts/check-api-docs.js (`npm run docs:check`, part of `npm run lint`): a lib export without a
 * doc comment fails it. Run on a throwaway package so the test does not depend on the libs' state.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const script = path.join(root, 'scripts', 'check-api-docs.js');
const { findUndocumented } = require(script) as { findUndocumented: (model: unknown) => string[] };

describe('docs:check on a package', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-docs-check-'));
    const pkg = path.join(dir, 'pkg');
    fs.mkdirSync(path.join(pkg, 'src'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: '@tmp/pkg', version: '0.0.0', main: 'src/index.ts' }));
    fs.writeFileSync(
      path.join(pkg, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', skipLibCheck: true, types: [] }, include: ['src'] }),
    );
    fs.writeFileSync(
      path.join(pkg, 'src', 'index.ts'),
      [
        '/**',
        ' * A package header: it documents the package, not the first export.',
        ' *',
        ' * @packageDocumentation',
        ' */',
        "export { first } from './first';",
        '/** Documented. */',
        'export function documentedFn(): number {',
        '  return 1;',
        '}',
        'export const undocumentedConst = 2;',
        '/** A documented base. */',
        'export interface Base {',
        '  x: number;',
        '}',
        '/** Documented on its own. */',
        'export class Own implements Base {',
        '  x = 1;',
        '}',
        'export class Bare implements Base {',
        '  x = 2;',
        '}',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(pkg, 'src', 'first.ts'), 'export function first(): number {\n  return 0;\n}\n');
    fs.writeFileSync(
      path.join(dir, 'typedoc.json'),
      JSON.stringify({ entryPoints: ['pkg'], entryPointStrategy: 'packages', packageOptions: { entryPoints: ['src/index.ts'] }, logLevel: 'Error' }),
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists exactly the undocumented exports and fails', () => {
    const res = spawnSync(process.execPath, [script, '--options', path.join(dir, 'typedoc.json')], { cwd: root, encoding: 'utf8' });
    expect(res.status).toBe(1);
    const listed = res.stderr
      .split('\n')
      .filter((l) => l.startsWith('  @tmp/pkg: '))
      .map((l) => l.trim())
      .sort();
    // `first` gets no comment from the package header; `Bare` none from the interface it implements
    expect(listed).toEqual(['@tmp/pkg: Bare (class)', '@tmp/pkg: first (function)', '@tmp/pkg: undocumentedConst (variable)']);
    expect(res.stderr).toContain('3 exported symbol(s) without a doc comment');
  }, 120000);
});

describe('findUndocumented on a model', () => {
  const comment = (text: string) => ({ summary: [{ kind: 'text', text }] });
  it('walks namespaces, skips re-export references, takes a comment of a signature, and wants a package header', () => {
    const model = {
      id: 0,
      children: [
        {
          id: 1,
          name: '@tmp/a',
          kind: 2,
          comment: comment('The package header.'),
          children: [
            { id: 2, name: 'ns', kind: 4, comment: comment('A namespace.'), children: [{ id: 3, name: 'inner', kind: 64, signatures: [{ id: 4 }] }] },
            { id: 5, name: 'alias', kind: 4194304 },
            { id: 6, name: 'sig', kind: 64, signatures: [{ id: 7, comment: comment('On the signature.') }] },
            { id: 8, name: 'Child', kind: 128, comment: comment('Parent doc.'), extendedTypes: [{ type: 'reference', target: 9 }] },
            { id: 9, name: 'Parent', kind: 128, comment: comment('Parent doc.') },
          ],
        },
        { id: 10, name: '@tmp/b', kind: 2, children: [{ id: 11, name: 'documented', kind: 32, comment: comment('Yes.') }] },
      ],
    };
    expect(findUndocumented(model)).toEqual([
      '@tmp/b: its index.ts header (a doc comment tagged @packageDocumentation)',
      '@tmp/a: ns.inner (function)',
      '@tmp/a: Child (class)',
    ]);
  });
});
