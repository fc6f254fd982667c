// Times the native MLPLOpt kernel alone (addon.mlpLoptStep, ns a parameter) for each instruction-set
// variant, on two shapes: 16 tasks x 2,410 parameters (the FMNIST-8 MLP's leaves, per-task θ) and one
// task with a 1M-parameter leaf. Given several builds of the addon it loads them all into this one
// process and alternates them rep by rep (best of `reps`), and prints the largest difference of their
// outputs from the first build's, so that a rewrite of the kernel is timed against the current one.
// Usage: flock /work/bench.lock node libs/optimizers/bench/mlp_lopt_kernel.bench.js [reps] [addon.node ...]
// (default: this checkout's native/build/Release/lopt_optimizers.node)
const path = require('path');

const reps = Number(process.argv[2] || 30);
const files = process.argv.length > 3 ? process.argv.slice(3) : [path.join(__dirname, '../native/build/Release/lopt_optimizers.node')];
const addons = files.map((f) => {
  const m = { exports: {} };
  process.dlopen(m, path.resolve(f));
  return { file: f, addon: m.exports };
});

// Deterministic pseudo-random floats (xorshift), scaled.
function fill(n, scale, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

function makeCase(N, sizes) {
  const P = sizes.reduce((a, b) => a + b, 0);
  const leaves = sizes.map((S, i) => ({
    p: fill(N * S, 1, 11 + i),
    g: fill(N * S, 0.1, 101 + i),
    m: fill(N * S * 6, 0.05, 1001 + i),
    pOut: new Float32Array(N * S),
    mOut: new Float32Array(N * S * 6),
  }));
  const thSizes = [19 * 32, 32, 32 * 32, 32, 32 * 2, 2];
  const theta = thSizes.map((s, k) => fill(N * s, k % 2 ? 0.1 : 0.3, 7 + k));
  const iteration = Int32Array.from({ length: N }, (_, n) => 3 + 17 * n);
  const decays = Float32Array.from([0.1, 0.5, 0.9, 0.99, 0.999, 0.9999]);
  const timeScales = Float32Array.from([1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000]);
  return { N, P, leaves, theta, iteration, decays, timeScales };
}

function run(addon, c, variant) {
  const L = c.leaves;
  addon.mlpLoptStep(c.N, true, L.map((l) => l.p), L.map((l) => l.g), L.map((l) => l.m), L.map((l) => l.pOut), L.map((l) => l.mOut), c.theta, c.iteration, c.decays, c.timeScales, 0.01, 0.001, variants[variant]);
}

function maxRelDiff(a, b) {
  let scale = 0, d = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / (scale || 1);
}

const cases = [
  { label: '16 tasks x 2,410', c: makeCase(16, [64 * 32, 32, 32 * 10, 10]), inner: 8 },
  { label: '1 task x 1M', c: makeCase(1, [1 << 20]), inner: 1 },
];
const variants = addons[0].addon.kernelVariants();
// The FMA peak of each variant (fma_probe.h, as `npm run bench` reports it), best of a few runs.
const peak = variants.map((_, v) => {
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    const { flops } = addons[0].addon.fmaProbe(2e7, v);
    best = Math.max(best, flops / Number(process.hrtime.bigint() - t0));
  }
  return best; // GFLOP/s
});
console.log(`MLPLOpt native kernel, ns a parameter (best of ${reps}, builds alternated): ${files.join(' | ')}`);
console.log(`FMA peak: ${variants.map((v, i) => `${v} ${peak[i].toFixed(0)} GFLOP/s`).join(', ')}; the MLP is 1,344 multiply-adds a parameter`);
for (const { label, c, inner } of cases) {
  for (let v = 0; v < variants.length; v++) {
    const best = addons.map(() => Infinity);
    const outs = [];
    for (let a = 0; a < addons.length; a++) {
      run(addons[a].addon, c, v);
      // step p - p' and momenta of this build (the update does not depend on earlier calls)
      outs.push(c.leaves.map((l) => ({ step: l.p.map((x, i) => x - l.pOut[i]), m: l.mOut.slice() })));
    }
    for (let r = 0; r < reps; r++) {
      for (let a = 0; a < addons.length; a++) {
        const t0 = process.hrtime.bigint();
        for (let k = 0; k < inner; k++) run(addons[a].addon, c, v);
        const ns = Number(process.hrtime.bigint() - t0) / inner / (c.N * c.P);
        best[a] = Math.min(best[a], ns);
      }
    }
    const diffs = outs.slice(1).map((o) => Math.max(...o.map((l, i) => maxRelDiff(l.step, outs[0][i].step))).toExponential(1));
    const gflops = best.map((ns) => `${((2 * 1344) / ns).toFixed(0)} GFLOP/s ${((100 * (2 * 1344)) / ns / peak[v]).toFixed(0)}%`);
    console.log(`${label.padEnd(17)} ${variants[v].padEnd(7)} ${best.map((x) => x.toFixed(2)).join(' | ')} ns  (${gflops.join(' | ')} of peak)${diffs.length ? `  step diff vs first: ${diffs.join(', ')}` : ''}`);
  }
}
