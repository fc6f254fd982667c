import * as tf from '@tensorflow/tfjs';
import { BACKEND_NAMES, currentBackend, initBackend } from '../index';

describe('initBackend', () => {
  const env = { ...process.env };
  let writes: string[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    writes = [];
    spy = jest.spyOn(process.stderr, 'write').mockImplementation(((s: string) => {
      writes.push(String(s));
      return true;
    }) as any);
  });
  afterEach(() => {
    spy.mockRestore();
    process.env = { ...env };
  });

  test('LOPT_BACKEND is used when no argument is given, and logs one line', async () => {
    process.env.LOPT_BACKEND = 'cpu';
    delete process.env.LOPT_QUIET;
    expect(await initBackend()).toBe('cpu');
    expect(currentBackend()).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\[lopt\] backend: cpu \(LOPT_BACKEND\)\n$/);
    // idempotent: no second initialisation or log line
    expect(await initBackend()).toBe('cpu');
    expect(await initBackend('cpu')).toBe('cpu');
    expect(writes).toHaveLength(1);
  });

  test('the argument wins over LOPT_BACKEND; quiet option and LOPT_QUIET suppress the line', async () => {
    process.env.LOPT_BACKEND = 'cpu';
    expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(writes).toEqual([]);
    process.env.LOPT_QUIET = '1';
    expect(await initBackend('cpu')).toBe('cpu');
    expect(writes).toEqual([]);
  });

  test("'auto' falls through to wasm when tfjs-node is not installed and says why", async () => {
    delete process.env.LOPT_QUIET;
    delete process.env.LOPT_BACKEND;
    let haveNode = true;
    try {
      require.resolve('@tensorflow/tfjs-node');
    } catch {
      haveNode = false;
    }
    const got = await initBackend();
    if (haveNode) {
      expect(got).toBe('tensorflow');
    } else {
      expect(got).toBe('wasm');
      expect(writes.join('')).toMatch(/backend: wasm \(default auto: no usable @tensorflow\/tfjs-node\[-gpu\]; simd=true\)/);
    }
    expect(await initBackend('AUTO', { quiet: true })).toBe(got);
    await initBackend('cpu', { quiet: true });
  });

  test("'tensorflow' without tfjs-node is a clear error with install instructions", async () => {
    let haveNode = true;
    try {
      require.resolve('@tensorflow/tfjs-node');
    } catch {
      haveNode = false;
    }
    if (haveNode) return;
    await expect(initBackend('tensorflow', { quiet: true })).rejects.toThrow(
      /backend 'tensorflow' was requested but neither @tensorflow\/tfjs-node-gpu nor @tensorflow\/tfjs-node could be loaded .*npm install @tensorflow\/tfjs-node@4.22.0/,
    );
  });

  test('unknown names list the allowed values', async () => {
    await expect(initBackend('webgl', { quiet: true })).rejects.toThrow("unknown backend 'webgl'; allowed: auto, tensorflow, wasm, cpu");
    process.env.LOPT_BACKEND = 'gpu';
    await expect(initBackend(undefined, { quiet: true })).rejects.toThrow(/unknown backend 'gpu'; allowed/);
    expect(BACKEND_NAMES).toEqual(['auto', 'tensorflow', 'wasm', 'cpu']);
  });

  test('concurrent calls share one initialisation', async () => {
    const [a, b] = await Promise.all([initBackend('wasm', { quiet: true }), initBackend('wasm', { quiet: true })]);
    expect(a).toBe('wasm');
    expect(b).toBe('wasm');
    await initBackend('cpu', { quiet: true });
    expect(currentBackend()).toBe('cpu');
  });
});
