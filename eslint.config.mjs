// ESLint (flat config): `npm run lint`, run by .ci/run between the build and the tests.
// typescript-eslint's `recommended` (syntax only: the type-checked presets cost a full type
// check per run, minutes on 2 cores) plus a few rules that catch real bugs; every rule turned off
// or relaxed says why. An eslint-disable comment must name a rule that fires (an unused one is an
// error) and should say why after `--`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { defineConfig, globalIgnores } from 'eslint/config';

const tests = ['**/__tests__/**', '**/*.test.ts', 'test/**'];

export default defineConfig(
  globalIgnores([
    '**/dist/', // tsc output (examples/dist too)
    'docs/api/', // npm run docs (TypeDoc) output
    '**/node_modules/',
    '**/native/build/', // node-gyp output
    'tools/', // Python only
    '.nx/',
    'coverage/',
    'runs/',
    'logs/',
    'tmp/',
  ]),
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },

  js.configs.recommended,
  tseslint.configs.recommended,

  {
    rules: {
      // Bugs that recommended does not catch (none needs type information):
      eqeqeq: ['error', 'smart'], // `== null` stays allowed (null or undefined)
      'no-self-compare': 'error', // write Number.isNaN(x), not x !== x
      'no-template-curly-in-string': 'error', // '${x}' meant as a template literal
      'no-unmodified-loop-condition': 'error',
      'no-unreachable-loop': 'error',
      'array-callback-return': 'error', // a map/filter/find callback that forgets to return
      'no-sequences': 'error', // `a, b` where `a; b` or `a && b` was meant
      'no-throw-literal': 'error', // throw Error objects (stack traces, `instanceof Error`)
      'no-constructor-return': 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',

      // The regexes that have runs of spaces match aligned CLI tables and progress lines in tests;
      // written as the output looks they are easier to check than with ` {2}`.
      'no-regex-spaces': 'off',
      // pytree code (tree maps over tensors, numbers, nested records, plugin configs) is typed
      // with `any` on purpose in hundreds of places; the rule would be noise, not a signal.
      '@typescript-eslint/no-explicit-any': 'off',
      // `_`-prefixed names are deliberately unused: parameters a shared signature requires
      // (`optFn(theta, _isTraining = false, ...)`, `init(_key)`, `_ctx`), and properties taken
      // out of an object only to leave them out of its rest (`const { steps: _steps, ...rest }`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },

  // Shipped code (libs, the runner, plugins) reports through its loggers and progress output
  // (process.stdout/stderr), never console.* (stray debug output). Tests, scripts, examples and
  // benches print on purpose.
  {
    files: ['libs/*/src/**', 'apps/*/src/**', 'plugins/*/src/**'],
    ignores: tests,
    rules: { 'no-console': 'error' },
  },

  // Tests load optional backends (tfjs-backend-wasm) conditionally and re-require modules inside
  // jest.isolateModules: require() is the tool there. (In shipped code every lazy require()
  // carries an eslint-disable that says why it is not an import.)
  {
    files: tests,
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },

  // Plain JavaScript: Node scripts and configs, CommonJS unless .mjs.
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    // CommonJS: require() is the only import there is.
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
);
