/**
 * The core addon's elementwise kernels on wasm (wasm_unary_kernels.ts): each op against float64
 * Math (rounded to float32) and against the stock tfjs-backend-wasm kernel it replaces, on every
 * instruction-set variant, with edge cases (±0, denormals, ±tiny, ±large, ±Inf, NaN); gradients,
 * int32 inputs (stock kernels) and heap growth.
 */
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend, nativeStatus, useNativeVariant, WASM_UNARY_OPS, coreNative, stockWasmKernel } from '../index';

beforeAll(async () => {
  expect(await initBackend('wasm', { quiet: true })).toBe('wasm');
});
afterEach(() => {
  if (coreNative()) useNativeVariant(undefined);
});

const hasCompiler = ['cc', 'gcc', 'clang'].some((c) => spawnSync(c, ['--version']).status === 0);
const wanted = (process.env.LOPT_NATIVE ?? 'auto').toLowerCase() !== 'off';

test('the core addon is built and its kernels replace the stock wasm ones wherever a C compiler is (npm run build builds it)', () => {
  if (!hasCompiler || !wanted) {
    expect(coreNative()).toBeNull();
    expect(stockWasmKernel('Tanh')).toBeUndefined();
    return;
  }
  coreNative();
  // on failure the status says why, e.g. "Core off: not built (...); build them with ..."
  expect(nativeStatus()).toMatch(/Core \((avx512|avx2|base)\)/);
  for (const op of [...WASM_UNARY_OPS, 'Maximum', 'Minimum', 'Pow']) {
    expect(stockWasmKernel(op)).toBeDefined();
    expect(tf.getKernel(op, 'wasm')).not.toBe(stockWasmKernel(op));
  }
});

const f32 = Math.fround;
const EPS = 2 ** -23;
const THRESHOLD = f32(f32(Math.log(EPS)) + 2); // tfjs-backend-wasm's Softplus threshold
/** Each op in float64, rounded to float32 as the stock kernels' formulas do. */
const REFERENCE: Record<(typeof WASM_UNARY_OPS)[number], (x: number) => number> = {
  Tanh: Math.tanh,
  Exp: Math.exp,
  Log: Math.log,
  Softplus: (x) => (x < THRESHOLD ? Math.exp(x) : x > -THRESHOLD ? x : Math.log(1 + f32(Math.exp(x)))),
  Expm1: Math.expm1,
  Log1p: (x) => Math.log(f32(x + 1)),
  Sqrt: Math.sqrt,
  Rsqrt: (x) => f32(1 / f32(Math.sqrt(x))),
  Sign: (x) => (Number.isNaN(x) || Math.abs(x) < EPS ? 0 : Math.sign(x)),
  Sin: Math.sin,
  Cos: Math.cos,
};

/** Distance in float32 steps (0 for equal values, NaN with NaN, and +0 with -0). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  if (a === b) return 0;
  const [ia, ib] = new Int32Array(new Float32Array([a, b]).buffer);
  const ordered = (i: number) => (i < 0 ? -2147483648 - i : i);
  return Math.abs(ordered(ia) - ordered(ib));
}

const EDGES = [
  0, -0, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754942e-38, 1e-30, -1e-30, 1e-10, -1e-10, 5e-8, -5e-8, EPS, -EPS, 1e-4, 0.0625, -0.0625,
  0.0624, 0.5, -0.5, 1, -1, 2, -2, 8.66, -8.66, 9.1, 10, -10, 20, 88.72, 88.73, 89, -87.33, -103.97, -104, -110, THRESHOLD, -THRESHOLD,
  f32(THRESHOLD * 1.0000001), 1e30, -1e30, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, Math.PI, -Math.PI / 2, 3 * Math.PI, 355, 524287.97, 524288,
  -524288, 1e6, 12345.678,
];

/** The edges, then values of random sign over magnitudes e^-20..e^20 (a third) and e^-4..e^4. */
function inputs(n: number): Float32Array {
  const x = new Float32Array(n);
  x.set(EDGES);
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = EDGES.length; i < n; i++) x[i] = (rand() < 0.5 ? -1 : 1) * Math.exp((rand() * 2 - 1) * (i % 3 === 0 ? 20 : 4));
  return x;
}

/** Runs a kernel config on the wasm backend and reads its output. */
function runKernel(kernel: tf.KernelConfig, x: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array; disposeData(id: object): void };
  const out = (kernel.kernelFunc as (a: unknown) => { dataId: object })({ inputs: { x }, backend, attrs: {} });
  const values = backend.typedArrayFromHeap(out).slice();
  backend.disposeData(out.dataId);
  return values;
}

const native = coreNative() ? describe : describe.skip;

native('core addon elementwise kernels on wasm', () => {
  const x = inputs(1 << 14);
  const variants = coreNative()?.kernelVariants() ?? [];
  // exact where the stock kernel is exact (a correctly rounded sqrt, a division, comparisons)
  const exactOps = new Set(['Sqrt', 'Rsqrt', 'Sign']);
  const trig = new Set(['Sin', 'Cos']);

  test.each(variants.flatMap((v) => WASM_UNARY_OPS.map((op) => [v, op])))('variant %s, %s: float64 Math to 1 ulp (edges exact), the stock kernel to 2 ulps (Sin, Cos: 1e-6)', (variant, op) => {
    useNativeVariant(variant);
    const t = tf.tensor1d(x);
    const y = (tf as unknown as Record<string, (a: tf.Tensor) => tf.Tensor>)[op.charAt(0).toLowerCase() + op.slice(1)](t);
    const got = y.dataSync() as Float32Array;
    const ref = REFERENCE[op as keyof typeof REFERENCE];
    const stock = runKernel(stockWasmKernel(op)!, t);
    let worstRef = 0;
    let worstStock = 0;
    for (let i = 0; i < x.length; i++) {
      const want = f32(ref(x[i]));
      if (i < EDGES.length && !Object.is(got[i], want)) throw new Error(`${op}(${x[i]}) = ${got[i]}, want ${want} (float64 Math)`);
      worstRef = Math.max(worstRef, ulps(got[i], want));
      // The stock Sin / Cos take x mod 2π in double and round that to float (sin_cos_workaround.cc):
      // up to ~3e-7 off, and no sine at all for |x| > ~1e9 (2π's double error times x / 2π).
      if (trig.has(op) && !(Math.abs(x[i]) < 1e9)) continue;
      worstStock = Math.max(worstStock, trig.has(op) ? Math.abs(got[i] - stock[i]) : ulps(got[i], stock[i]));
    }
    expect(worstRef).toBeLessThanOrEqual(1);
    expect(worstStock).toBeLessThanOrEqual(trig.has(op) ? 1e-6 : exactOps.has(op) ? 0 : 2);
    tf.dispose([t, y]);
  });

  test.each(variants)('variant %s: Maximum and Minimum give the stock values bit for bit (NaN, ±0, ±Inf), broadcast or not', (variant) => {
    useNativeVariant(variant);
    const backend = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array; disposeData(id: object): void };
    const specials = [NaN, 0, -0, Infinity, -Infinity, 1, -1, 1e-45];
    const n = 1000;
    const a = inputs(n);
    const b = Float32Array.from({ length: n }, (_, i) => (i < 64 ? specials[i % 8] : a[(i * 7) % n]));
    for (let i = 0; i < 64; i++) a[i] = specials[Math.floor(i / 8)];
    const pairs: Array<[tf.Tensor, tf.Tensor]> = [
      [tf.tensor2d(a, [40, 25]), tf.tensor2d(b, [40, 25])],
      [tf.tensor2d(a, [40, 25]), tf.scalar(0)],
      [tf.scalar(NaN), tf.tensor1d(b)],
      [tf.tensor1d(a), tf.tensor2d([0.5], [1, 1])],
      [tf.tensor2d(a, [40, 25]), tf.tensor1d(b.subarray(0, 25))], // a row broadcast: the stock kernel
    ];
    for (const [x, y] of pairs) {
      for (const [name, op] of [['Maximum', tf.maximum], ['Minimum', tf.minimum]] as const) {
        const got = op(x, y);
        const ref = (stockWasmKernel(name)!.kernelFunc as (a: unknown) => { dataId: object; shape: number[] })({ inputs: { a: x, b: y }, backend, attrs: {} });
        expect(got.shape).toEqual(ref.shape);
        const want = backend.typedArrayFromHeap(ref).slice();
        const have = got.dataSync();
        for (let i = 0; i < want.length; i++) if (!Object.is(have[i], want[i])) throw new Error(`${name} [${i}]: ${have[i]}, stock ${want[i]}`);
        backend.disposeData(ref.dataId);
        got.dispose();
      }
      tf.dispose([x, y]);
    }
  });

  /** The core addon's pow on any variant (tf.pow runs the stock kernel on the base variant). */
  function runPow(x: tf.Tensor, y: tf.Tensor): Float32Array {
    const out = new Float32Array(Math.max(x.size, y.size));
    coreNative()!.pow(x.dataSync() as Float32Array, y.dataSync() as Float32Array, out, 'base');
    return out;
  }

  test.each(variants)('variant %s: Pow is float64 Math.pow (C99 special cases) to 1 ulp, the stock kernel (powf) to 1 ulp, special values exactly', (variant) => {
    useNativeVariant(variant);
    const backend = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array; disposeData(id: object): void };
    const specials = [0, -0, 1, -1, 0.5, -0.5, 2, -2, 3, -3, 1e-45, 1e30, -1e30, Infinity, -Infinity, NaN];
    const cPow = (a: number, b: number) => (b === 0 || a === 1 ? 1 : a === -1 && !Number.isFinite(b) && !Number.isNaN(b) ? 1 : Math.pow(a, b));
    const n = specials.length ** 2 + 3000;
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    specials.forEach((u, i) =>
      specials.forEach((v, j) => {
        a[i * specials.length + j] = u;
        b[i * specials.length + j] = v;
      }),
    );
    const r = inputs(3000);
    for (let i = 0; i < 3000; i++) {
      a[specials.length ** 2 + i] = i % 5 === 0 ? -Math.round(Math.abs(r[i]) * 3) / 2 : Math.abs(r[(i * 7) % 3000]);
      b[specials.length ** 2 + i] = i % 5 === 0 ? Math.round(r[i] * 4) : r[i] / 8;
    }
    const cases: Array<[tf.Tensor, tf.Tensor, (i: number) => [number, number]]> = [
      [tf.tensor1d(a), tf.tensor1d(b), (i) => [a[i], b[i]]],
      [tf.tensor1d(a), tf.scalar(-0.5), (i) => [a[i], -0.5]],
      [tf.scalar(10), tf.tensor1d(b), (i) => [10, b[i]]],
    ];
    for (const [x, y, args] of cases) {
      // (the base variant leaves Pow to the stock kernel)
      const got = variant === 'base' ? runPow(x, y) : tf.pow(x, y).dataSync();
      const ref = (stockWasmKernel('Pow')!.kernelFunc as (a: unknown) => { dataId: object })({ inputs: { a: x, b: y }, backend, attrs: {} });
      const stock = backend.typedArrayFromHeap(ref).slice();
      backend.disposeData(ref.dataId);
      for (let i = 0; i < got.length; i++) {
        const [u, v] = args(i);
        const want = f32(cPow(u, v));
        const special = !Number.isFinite(want) || want === 0 || i < specials.length ** 2;
        if (special ? !Object.is(got[i], want) && !(Number.isNaN(got[i]) && Number.isNaN(want)) : ulps(got[i], want) > 1) throw new Error(`pow(${u}, ${v}) = ${got[i]}, want ${want}`);
        if (special ? !Object.is(got[i], stock[i]) && !(Number.isNaN(got[i]) && Number.isNaN(stock[i])) : ulps(got[i], stock[i]) > 1) throw new Error(`pow(${u}, ${v}) = ${got[i]}, stock ${stock[i]}`);
      }
      tf.dispose([x, y]);
    }
  });

  test('int32 inputs run the stock kernels; an empty tensor and a scalar work', () => {
    const i = tf.tensor1d([-3, 0, 2, 7], 'int32');
    expect(Array.from(tf.sign(i).dataSync())).toEqual([-1, 0, 1, 1]);
    const e = tf.exp(i);
    expect(e.dtype).toBe('float32');
    expect(Array.from(e.dataSync())).toEqual([-3, 0, 2, 7].map((v) => f32(Math.exp(v))));
    expect(tf.tanh(tf.zeros([0, 3])).shape).toEqual([0, 3]);
    expect(Array.from(tf.maximum(tf.tensor1d([1, -5, 3], 'int32'), tf.scalar(2, 'int32')).dataSync())).toEqual([2, 2, 3]);
    expect(tf.minimum(tf.zeros([0, 2]), tf.scalar(1)).shape).toEqual([0, 2]);
    expect(tf.log(tf.scalar(Math.E)).dataSync()[0]).toBe(f32(Math.log(f32(Math.E))));
    tf.dispose([i, e]);
  });

  test('gradients through the replaced kernels equal the cpu backend within float rounding', async () => {
    const xs = [-3, -0.7, -0.01, 0, 0.3, 1.5, 12];
    const grads = () =>
      tf.tidy(() => {
        const x = tf.tensor1d(xs);
        const f = (v: tf.Tensor) =>
          tf.sum(tf.addN([tf.tanh(v), tf.exp(tf.mul(v, 0.1)), tf.softplus(v), tf.log(tf.add(tf.abs(v), 1)), tf.sin(v), tf.mul(tf.cos(v), tf.sqrt(tf.add(tf.abs(v), 1)))]));
        return Array.from(tf.grad(f)(x).dataSync());
      });
    const onWasm = grads();
    await tf.setBackend('cpu');
    const onCpu = grads();
    await tf.setBackend('wasm');
    onWasm.forEach((g, i) => expect(Math.abs(g - onCpu[i])).toBeLessThan(1e-6 * Math.max(1, Math.abs(onCpu[i]))));
  });

  test('the kernel takes fresh heap views after its output may have grown the heap', () => {
    const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const big = tf.fill([heap() / 8], 0.5); // half the heap: the output allocation grows it
    const before = heap();
    const y = tf.tanh(big);
    expect(heap()).toBeGreaterThan(before);
    const ends = tf.concat([tf.slice(y, 0, 1), tf.slice(y, big.size - 1, 1)]).dataSync();
    expect(Array.from(ends)).toEqual([f32(Math.tanh(0.5)), f32(Math.tanh(0.5))]);
    tf.dispose([big, y]);
  });
});

test('with LOPT_NATIVE=off the stock kernels stay registered', () => {
  const saved = process.env.LOPT_NATIVE;
  process.env.LOPT_NATIVE = 'off';
  try {
    jest.isolateModules(() => {
      jest.doMock('@tensorflow/tfjs', () => tf);
      const fresh = require('../wasm_unary_kernels') as typeof import('../wasm_unary_kernels');
      expect((require('../core_native') as typeof import('../core_native')).coreNative()).toBeNull();
      const before = tf.getKernel('Tanh', 'wasm');
      expect(fresh.registerWasmUnaryKernels()).toBe(false);
      expect(tf.getKernel('Tanh', 'wasm')).toBe(before);
    });
  } finally {
    if (saved === undefined) delete process.env.LOPT_NATIVE;
    else process.env.LOPT_NATIVE = saved;
  }
});
