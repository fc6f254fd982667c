// Times the native per-parameter MLP kernel alone (addon.perParamMLP, per_param_mlp.c; HyperV2,
// AdafacMLPLOpt, AdafacNominal) in ns a parameter: F features (one `copy` source), an MLP
// F -> 32 -> 32 (-> 32) -> 2, both outputs written. Given several builds of the addon it loads them
// all into this one process, alternates them rep by rep (best of `reps`) and says whether their
// outputs are bitwise identical to the first build's.
// Usage: flock /work/bench.lock node libs/optimizers/bench/per_param_mlp_kernel.bench.js [reps] [addon.node ...]
// (default: this checkout's native/build/Release/lopt_optimizers.node)
const path = require('path');
const reps = Number(process.argv[2] || 10);
const files = process.argv.length > 3 ? process.argv.slice(3) : [path.join(__dirname, '../native/build/Release/lopt_optimizers.node')];
const addons = files.map((f) => { const m = { exports: {} }; process.dlopen(m, path.resolve(f)); return m.exports; });
function fill(n, scale, seed) { const a = new Float32Array(n); let s = seed >>> 0 || 1; for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; a[i] = ((s / 4294967296) * 2 - 1) * scale; } return a; }
function mk(N, S, F, Hs) {
  const src = fill(N * S * F, 1, 3);
  const sizes = Int32Array.from([F, ...Hs, 2]);
  const w0 = fill(F * Hs[0], 0.3, 5), bias = fill(N * Hs[0], 0.1, 6);
  const layers = [];
  for (let l = 1; l < sizes.length - 1; l++) layers.push(fill(sizes[l] * sizes[l + 1], 0.3, 10 + l), fill(sizes[l + 1], 0.1, 20 + l));
  const outs = [new Float32Array(N * S), new Float32Array(N * S)];
  return { N, S, F, args: [N, S, [src], Int32Array.from([F]), [null, null], 1, new Int32Array(6), [null, null], Int32Array.from([0, F, 0, F, -1, 0]), Float32Array.from([0]), sizes, w0, bias, layers, Int32Array.from([0, 1]), outs, null, null, 0, null], outs, macs: F * Hs[0] + Hs.slice(1).reduce((a, h, i) => a + Hs[i] * h, 0) + Hs[Hs.length - 1] * 2 };
}
const cases = [['8 x 2,410, F 16, 32-32', mk(8, 2410, 16, [32, 32]), 10], ['1 x 1M, F 16, 32-32', mk(1, 1 << 20, 16, [32, 32]), 1], ['1 x 1M, F 29, 32-32-32', mk(1, 1 << 20, 29, [32, 32, 32]), 1]];
const variants = addons[0].kernelVariants();
for (const [label, c, inner] of cases) for (const v of variants.slice(0, 2)) {
  const best = addons.map(() => Infinity); const res = [];
  for (const a of addons) { a.perParamMLP(...c.args, v); res.push(c.outs.map((o) => o.slice())); }
  for (let r = 0; r < reps; r++) addons.forEach((a, i) => { const t0 = process.hrtime.bigint(); for (let k = 0; k < inner; k++) a.perParamMLP(...c.args, v); best[i] = Math.min(best[i], Number(process.hrtime.bigint() - t0) / inner / (c.N * c.S)); });
  const same = res.slice(1).map((r) => r.every((o, j) => o.every((x, i) => Object.is(x, res[0][j][i]))));
  console.log(`${label.padEnd(24)} ${v.padEnd(7)} ${best.map((x) => x.toFixed(2)).join(' | ')} ns/param (${c.macs} MACs: ${best.map((x) => (2 * c.macs / x).toFixed(0)).join(' | ')} GFLOP/s) identical: ${same.join(',')}`);
}
