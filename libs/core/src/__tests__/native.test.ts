import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

// Each test loads a fresh copy of native.ts (its settings are read once per process), sharing
// the already loaded tf.js instead of evaluating it again.
function freshNative(): typeof import('../native') {
  let mod: typeof import('../native') | undefined;
  jest.isolateModules(() => {
    jest.doMock('@tensorflow/tfjs', () => tf);
    mod = require('../native');
  });
  return mod!;
}

const missing = path.join(os.tmpdir(), 'lopt-no-such-addon', 'none.node');

describe('native addon loading and settings', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test('an addon that is not built is null under auto, and the status says how to build it', () => {
    process.env.LOPT_NATIVE = 'auto';
    const n = freshNative();
    expect(n.nativeStatus()).toBe('native kernels: none requested yet');
    expect(n.loadNativeAddon(missing, 'Demo')).toBeNull();
    expect(n.nativeStatus()).toMatch(/^native kernels: Demo off: not built \(.*none\.node: .*\); build them with 'npx lopt build-native' \('npm run build:native' in the lopt-ts repository; same values, faster\)$/);
    expect(n.nativeVariant()).toBeNull();
    expect(() => n.useNativeVariant('base')).toThrow(/useNativeVariant: no native kernel is loaded/);
  });

  test('LOPT_NATIVE=on makes a missing addon an error; off never loads one', () => {
    process.env.LOPT_NATIVE = 'on';
    expect(() => freshNative().loadNativeAddon(missing, 'Demo')).toThrow(/LOPT_NATIVE=on but the Demo native kernel is not built/);
    process.env.LOPT_NATIVE = 'off';
    const n = freshNative();
    expect(n.loadNativeAddon(missing, 'Demo')).toBeNull();
    expect(n.nativeStatus()).toBe('native kernels: Demo off: turned off by LOPT_NATIVE=off');
  });

  test('a bad LOPT_NATIVE names the allowed values', () => {
    process.env.LOPT_NATIVE = 'fast';
    expect(() => freshNative().nativeSetting()).toThrow("LOPT_NATIVE='fast': allowed values are auto, on, off");
    process.env.LOPT_NATIVE = '0';
    expect(freshNative().nativeSetting()).toBe('off');
  });

  test('an addon loads once per process; LOPT_NATIVE_ISA is checked against its variants', () => {
    // a stand-in addon: a CommonJS module with the NativeAddon interface
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-native-'));
    const file = path.join(dir, 'fake.js');
    fs.writeFileSync(file, "module.exports = { kernelVariants: () => ['avx2', 'base'] };");
    process.env.LOPT_NATIVE = 'auto';
    process.env.LOPT_NATIVE_ISA = 'base';
    const n = freshNative();
    const a = n.loadNativeAddon(file, 'Fake');
    expect(a).not.toBeNull();
    expect(n.loadNativeAddon(file, 'Fake')).toBe(a);
    expect(n.nativeVariant()).toBe('base');
    expect(n.nativeVariantArg()).toBe('base');
    expect(n.nativeStatus()).toBe('native kernels: Fake (base)');
    n.useNativeVariant(undefined);
    expect(n.nativeVariant()).toBe('avx2');
    expect(() => n.useNativeVariant('avx512')).toThrow("native variant 'avx512': this CPU runs avx2, base");
    process.env.LOPT_NATIVE_ISA = 'avx512';
    expect(() => freshNative().loadNativeAddon(file, 'Fake')).toThrow("LOPT_NATIVE_ISA='avx512': this CPU runs avx2, base");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('addon paths and settings without Node (browser builds)', () => {
  test('nativeAddonPath is path.resolve(dir, "..", "native/build/Release", file), and "" without a directory', () => {
    const n = freshNative();
    for (const dir of ['/repo/libs/optimizers/dist', '/repo/libs/optimizers/src/', '/x']) {
      expect(n.nativeAddonPath(dir, 'lopt_optimizers.node')).toBe(path.resolve(dir, '..', 'native', 'build', 'Release', 'lopt_optimizers.node'));
    }
    expect(n.nativeAddonPath('C:\\repo\\libs\\tasks\\dist', 'lopt_tasks.node')).toBe('C:\\repo\\libs\\tasks\\native\\build\\Release\\lopt_tasks.node');
    expect(n.nativeAddonPath(undefined, 'lopt_tasks.node')).toBe('');
  });

  test('an addon with no path (a browser bundle has no __dirname) is reported as unavailable, also with LOPT_NATIVE=on', () => {
    const saved = process.env.LOPT_NATIVE;
    process.env.LOPT_NATIVE = 'on';
    try {
      const n = freshNative();
      expect(n.loadNativeAddon('', 'Browser')).toBeNull();
      expect(n.nativeStatus()).toMatch(/Browser off: not available here/);
    } finally {
      if (saved === undefined) delete process.env.LOPT_NATIVE;
      else process.env.LOPT_NATIVE = saved;
    }
  });

  test('envVar reads process.env where there is one, and is undefined without a process', () => {
    const n = freshNative();
    process.env.LOPT_TEST_ENV_VAR = 'x';
    expect(n.envVar('LOPT_TEST_ENV_VAR')).toBe('x');
    delete process.env.LOPT_TEST_ENV_VAR;
    expect(n.envVar('LOPT_TEST_ENV_VAR')).toBeUndefined();
    const proc = Object.getOwnPropertyDescriptor(globalThis, 'process')!;
    Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
    try {
      expect(n.envVar('PATH')).toBeUndefined();
    } finally {
      Object.defineProperty(globalThis, 'process', proc);
    }
  });
});
