#!/usr/bin/env node
/**
 * `npm run bench`: outer steps/s of the seed's two meta-training configurations, the two runs of
 * the reference's Part 5 notebook (docs/notebooks/Part5_Meta_training_with_GradientLearner.ipynb).
 *
 *   A = experiment `seed-single-machine`  (MLPLOpt, PES T=50, N=4,  quadratic(10) + FMNIST 8x8 MLP)
 *   B = experiment `seed-learner-worker`  (same, N=16, central learner + in-process worker)
 *
 * Options: --backend wasm|cpu|tensorflow|auto (default wasm), --steps N (timed outer steps, default
 * 10), --warmup N (default 2), --config A|B|both (default both), --threads 1|2 (default 1: the
 * sequential path; 2 runs the estimators' antithetic branches in worker threads), --out DIR
 * (default bench), --reference PYTHON (also run the real learned_optimization with that
 * interpreter, tools/reference/seed_bench.py, alternating with ours), --rounds N (alternations,
 * default 2 with --reference, else 1). Writes DIR/results.json and DIR/results.md.
 * `--suite lopts` instead times one update of every learned optimizer (bench_lopts.ts) and writes
 * DIR/lopts.json and DIR/lopts.md (`--lopts A,B` and `--problems seed-mlp,layers-1m` time only those); `--suite tasks` times inner steps of one task of every task
 * family and compares their speed per FLOP with the image MLP's (bench_tasks.ts), writing
 * DIR/tasks.json and DIR/tasks.md; `--tasks A,B` there times only the subjects whose label
 * contains A or B (and the image MLP, the per-FLOP baseline).
 *
 * FLOPs follow our own cost model (1 MAC = 2 FLOPs, a transcendental = 1 FLOP; an estimate, not
 * a figure from the reference), computed from the configuration by `flopsPerOuterStep`.
 */
import { spawnSync } from 'child_process';
import { Worker } from 'worker_threads';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, nativeVariant, registry } from '@lopt/core';
import { loadBuiltinLibs, nativeKernelsStatus } from './libs';
import { benchLearnedOptimizers, loptBenchMarkdown, selectLoptBench } from './bench_lopts';
import { benchTasks, selectTaskBenchSubjects, taskBenchMarkdown } from './bench_tasks';
import { mlpLoptNative, MLPLOPT_ADDON_PATH } from '@lopt/optimizers';
import { MetaTrainer, MetaTrainingConfig, validateMetaTrainingConfig } from '@lopt/training';

export interface BenchOptions {
  backend: string;
  steps: number;
  warmup: number;
  configs: Array<'A' | 'B'>;
  threads: number;
  out: string;
  /** LOPT_NATIVE for this run: auto (the native kernels where built), on, off (tf.js kernels only). */
  native: string;
  /** A Python interpreter with the reference installed: its runs alternate with ours. */
  reference: string | null;
  /** How many times each configuration runs (alternating with the reference's runs). */
  rounds: number;
  /** `seed`: the seed's configurations A/B; `lopts`: one update of every learned optimizer (bench_lopts.ts). */
  suite?: 'seed' | 'lopts' | 'tasks';
  /** `--suite lopts` only: the learned optimizers to time (bench_lopts.ts subject names; all when empty). */
  lopts?: string[];
  /** `--suite lopts` only: the parameter trees to time (`seed-mlp`, `layers-1m`; all when empty). */
  problems?: string[];
  /** With `suite: 'tasks'`: time only the subjects whose label contains one of these (and the baseline). */
  tasks?: string[];
}

/** Per-parameter-element FLOPs of one MLPLOpt update (our cost model): momenta, normaliser, MLP, step. */
export function mlpLOptFlopsPerParam(hidden = 32, hiddenLayers = 2, inputs = 19): number {
  const sizes = [inputs, ...new Array(hiddenLayers).fill(hidden), 2];
  let matmul = 0;
  let bias = 0;
  let relu = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    matmul += 2 * sizes[i] * sizes[i + 1];
    bias += sizes[i + 1];
    if (i + 2 < sizes.length) relu += sizes[i + 1];
  }
  const momentum = 6 * 3;
  const normaliser = 8 * 3;
  const step = 5;
  return momentum + normaliser + matmul + bias + relu + step;
}

/** FLOPs of one inner task-step (task forward+backward plus the learned optimizer's update). */
export function flopsPerTaskStep(task: { name: string; config: Record<string, any> }, loptPerParam: number): number {
  if (task.name === 'FixedDimQuadraticFamily') {
    const d = Number(task.config.dim ?? 10);
    return 6 * d + d * loptPerParam;
  }
  const img = /^ImageMLP_FashionMnist(\d+)_Relu(\d+)$/.exec(task.name);
  if (img || task.name === 'ImageMLPTask') {
    const side = img ? Number(img[1]) : Number(task.config.imageSize?.[0] ?? 8);
    const D = side * side;
    const hidden: number[] = img ? [Number(img[2])] : task.config.hiddenSizes ?? [32];
    const B = Number(task.config.batchSize ?? 128);
    const C = 10;
    const sizes = [D, ...hidden, C];
    let fwd = 0;
    let bwd = 0;
    let params = 0;
    for (let i = 0; i + 1 < sizes.length; i++) {
      fwd += 2 * B * sizes[i] * sizes[i + 1];
      bwd += 2 * B * sizes[i] * sizes[i + 1]; // dW
      if (i > 0) bwd += 2 * B * sizes[i] * sizes[i + 1]; // dh (not for the input layer)
      params += sizes[i] * sizes[i + 1] + sizes[i + 1];
    }
    const elementwise = 30000 * (B / 128);
    return fwd + bwd + elementwise + params * loptPerParam;
  }
  return NaN;
}

/** FLOPs of one outer step of a meta-training configuration (both antithetic branches). */
export function flopsPerOuterStep(cfg: MetaTrainingConfig): { total: number; taskSteps: number; perTask: Array<{ name: string; flops: number }> } {
  const lc = cfg.learnedOptimizer.config as Record<string, number>;
  const perParam = mlpLOptFlopsPerParam(lc.hiddenSize ?? 32, lc.hiddenLayers ?? 2);
  const est = cfg.gradientEstimator;
  const len = Number(est.config.truncLength ?? est.config.unrollLength ?? 0);
  const antithetic = registry.get('gradient_estimator', est.name).traits?.antithetic ? 2 : 1;
  const workers = cfg.mode === 'learner-worker' ? cfg.numWorkers : 1;
  let total = 0;
  let taskSteps = 0;
  const perTask = cfg.tasks.map((t) => {
    const steps = antithetic * t.numTasks * len * workers;
    const f = steps * flopsPerTaskStep(t, perParam);
    total += f;
    taskSteps += steps;
    return { name: t.name, flops: f };
  });
  return { total, taskSteps, perTask };
}

/** The backend's own matMul throughput on a large square and on the lopt's thin shape. */
export async function matMulGflops(): Promise<{ square1024: number; thin: number }> {
  const time = async (m: number, k: number, n: number, reps: number) => {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    const warm = tf.matMul(a, b);
    await warm.data();
    warm.dispose();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }
    const s = (performance.now() - t0) / 1000;
    a.dispose();
    b.dispose();
    return (2 * m * k * n * reps) / s / 1e9;
  };
  return { square1024: await time(1024, 1024, 1024, 5), thin: await time(19280, 32, 32, 20) };
}

export interface BenchResult {
  config: 'A' | 'B';
  experiment: string;
  backend: string;
  threads: number;
  steps: number;
  warmup: number;
  secondsPerStep: number;
  outerStepsPerSec: number;
  innerTaskStepsPerSec: number;
  gflopPerOuterStep: number;
  achievedGflops: number;
  peakRssMB: number;
  /** tensors held by the main thread and every worker thread together */
  numTensorsBefore: number;
  numTensorsAfter: number;
  finalLoss: number;
  referenceStepsPerSec: number;
  /** The hot-path kernels: 'native (avx512)', 'native (avx2)', ... or 'tf.js'. */
  kernels: string;
  /** Seconds from building the trainer to the end of the first outer step (start-up). */
  secondsToFirstStep: number;
  /** The FMA peak of as many cores as the run uses (GFLOP/s), and the achieved fraction of it. */
  peakGflops: number | null;
  fractionOfPeak: number | null;
}

/** One run of the real learned_optimization (tools/reference/seed_bench.py). */
export interface ReferenceResult {
  config: 'A' | 'B';
  stepsPerSec: number;
  /** Includes jax's compilation of the step. */
  secondsToFirstStep: number;
}

const EXPERIMENTS = { A: 'seed-single-machine', B: 'seed-learner-worker' } as const;
const REFERENCE = { A: 13.01, B: 8.01 } as const;

export async function runConfig(which: 'A' | 'B', opts: BenchOptions, log: (s: string) => void = () => undefined): Promise<BenchResult> {
  const name = EXPERIMENTS[which];
  const cfg = validateMetaTrainingConfig(registry.parseConfig('experiment', name, { steps: opts.warmup + opts.steps }), registry);
  const started = performance.now();
  const trainer = new MetaTrainer(cfg, registry, { threads: opts.threads, backend: opts.backend });
  let state = await trainer.init();
  let loss = NaN;
  let secondsToFirstStep = NaN;
  for (let i = 0; i < opts.warmup; i++) {
    [state, { loss }] = await trainer.step(state, i).then(([s, r]) => [s, r] as const);
    if (i === 0) secondsToFirstStep = (performance.now() - started) / 1000;
  }
  const countAll = async () => {
    const c = await trainer.numTensors();
    return c.main + c.threads.reduce((a, b) => a + b, 0);
  };
  const before = await countAll();
  const t0 = performance.now();
  for (let i = 0; i < opts.steps; i++) {
    const t1 = performance.now();
    const [s, r] = await trainer.step(state, opts.warmup + i);
    state = s;
    loss = r.loss;
    const times = Object.entries(r.metrics)
      .filter(([k]) => /^sample\|\|[^/]+\/time$/.test(k) && !k.includes('default_cfg'))
      .map(([k, v]) => `${k.slice(8, -5)} ${Number(v).toFixed(3)} s`)
      .join(', ');
    log(`  ${which} step ${i + 1}/${opts.steps}: ${((performance.now() - t1) / 1000).toFixed(3)} s (${times}), loss ${loss.toFixed(4)}, rss ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MB`);
  }
  const secs = (performance.now() - t0) / 1000;
  const after = await countAll();
  await trainer.dispose(state);
  const flops = flopsPerOuterStep(cfg);
  const sps = opts.steps / secs;
  return {
    config: which,
    experiment: name,
    backend: tf.getBackend(),
    threads: opts.threads,
    steps: opts.steps,
    warmup: opts.warmup,
    secondsPerStep: secs / opts.steps,
    outerStepsPerSec: sps,
    innerTaskStepsPerSec: sps * flops.taskSteps,
    gflopPerOuterStep: flops.total / 1e9,
    achievedGflops: (sps * flops.total) / 1e9,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    numTensorsBefore: before,
    numTensorsAfter: after,
    finalLoss: loss,
    referenceStepsPerSec: REFERENCE[which],
    kernels: nativeVariant() ? `native (${nativeVariant()})` : 'tf.js',
    secondsToFirstStep,
    peakGflops: null,
    fractionOfPeak: null,
  };
}

/** Runs tools/reference/seed_bench.py with `python` for one configuration; throws with its output on failure. */
export function runReference(python: string, which: 'A' | 'B', opts: BenchOptions): ReferenceResult {
  const script = path.resolve(__dirname, '../../../tools/reference/seed_bench.py');
  const r = spawnSync(python, [script, '--config', which, '--warmup', String(Math.max(1, opts.warmup)), '--steps', String(opts.steps)], {
    encoding: 'utf8',
    timeout: 30 * 60 * 1000,
  });
  const line = (r.stdout ?? '').trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    throw new Error(`--reference ${python}: seed_bench.py --config ${which} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${(r.stderr ?? '').slice(-2000)}`);
  }
  const o = JSON.parse(line);
  return { config: which, stepsPerSec: Number(o.steps_per_sec), secondsToFirstStep: Number(o.seconds_to_first_step) };
}

/**
 * The machine's FMA peak in GFLOP/s on `cores` cores at once (the native probe, 24 independent
 * vector FMA chains, in worker threads), or null without the native kernels. Each core runs about
 * `seconds` of the loop.
 */
export async function fmaPeakGflops(cores: number, seconds = 0.3): Promise<number | null> {
  const addon = mlpLoptNative();
  if (!addon?.fmaProbe) return null;
  const t0 = performance.now();
  const trial = addon.fmaProbe(1_000_000);
  const iters = Math.max(1, Math.round((1_000_000 * seconds) / Math.max(1e-6, (performance.now() - t0) / 1000)));
  const code = `const { parentPort, workerData } = require('worker_threads');
    const addon = require(workerData.addonPath);
    parentPort.once('message', () => { addon.fmaProbe(workerData.iters); parentPort.postMessage(0); });
    parentPort.postMessage('ready');`;
  const workers = Array.from({ length: cores }, () => new Worker(code, { eval: true, workerData: { addonPath: MLPLOPT_ADDON_PATH, iters } }));
  try {
    const once = (w: Worker, go: boolean) =>
      new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        if (go) w.postMessage('go');
      });
    await Promise.all(workers.map((w) => once(w, false)));
    const start = performance.now();
    await Promise.all(workers.map((w) => once(w, true)));
    const wall = (performance.now() - start) / 1000;
    return (cores * (trial.flops / 1_000_000) * iters) / wall / 1e9;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Ours against the reference, per configuration: medians over the alternated rounds, and their ratio. */
export function compareWithReference(ours: BenchResult[], ref: ReferenceResult[]): Array<{ config: 'A' | 'B'; ours: number; reference: number; ratio: number; oursFirstStep: number; referenceFirstStep: number }> {
  const configs = [...new Set(ours.map((r) => r.config))];
  return configs.map((c) => {
    const o = ours.filter((r) => r.config === c);
    const f = ref.filter((r) => r.config === c);
    const oursSps = median(o.map((r) => r.outerStepsPerSec));
    const refSps = median(f.map((r) => r.stepsPerSec));
    return { config: c, ours: oursSps, reference: refSps, ratio: oursSps / refSps, oursFirstStep: median(o.map((r) => r.secondsToFirstStep)), referenceFirstStep: median(f.map((r) => r.secondsToFirstStep)) };
  });
}

function parseArgs(argv: string[]): BenchOptions {
  const opts: BenchOptions = { backend: 'wasm', steps: 10, warmup: 2, configs: ['A', 'B'], threads: 1, out: 'bench', native: process.env.LOPT_NATIVE ?? 'auto', reference: null, rounds: 0, suite: 'seed' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => inline ?? argv[++i];
    switch (flag) {
      case '--backend':
        opts.backend = val();
        break;
      case '--steps':
        opts.steps = Number(val());
        break;
      case '--warmup':
        opts.warmup = Number(val());
        break;
      case '--threads':
        opts.threads = Number(val());
        break;
      case '--native':
        opts.native = val();
        if (!['auto', 'on', 'off'].includes(opts.native)) throw new Error(`--native: '${opts.native}' (allowed: auto, on, off)`);
        break;
      case '--out':
        opts.out = val();
        break;
      case '--reference':
        opts.reference = val();
        break;
      case '--rounds':
        opts.rounds = Number(val());
        break;
      case '--tasks':
        opts.tasks = val()
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '');
        break;
      case '--suite': {
        const v = val();
        if (v !== 'seed' && v !== 'lopts' && v !== 'tasks') throw new Error(`--suite: '${v}' (allowed: seed, lopts, tasks)`);
        opts.suite = v;
        break;
      }
      case '--lopts':
        opts.lopts = val().split(',').map((x) => x.trim()).filter((x) => x);
        break;
      case '--problems':
        opts.problems = val().split(',').map((x) => x.trim()).filter((x) => x);
        break;
      case '--config': {
        const c = val().toUpperCase();
        if (c === 'BOTH') opts.configs = ['A', 'B'];
        else if (c === 'A' || c === 'B') opts.configs = [c];
        else throw new Error(`--config: '${c}' (allowed: A, B, both)`);
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write('usage: bench [--suite seed|lopts|tasks] [--backend wasm|cpu|tensorflow|auto] [--steps N] [--warmup N] [--config A|B|both] [--threads 1|2] [--native auto|on|off] [--out DIR] [--reference PYTHON] [--rounds N] [--lopts NAME,...] [--problems seed-mlp,layers-1m] [--tasks A,B (with --suite tasks)]\n');
        process.exit(0);
      // eslint-disable-next-line no-fallthrough -- process.exit() never returns
      default:
        throw new Error(`unknown option '${a}' (allowed: --suite, --backend, --steps, --warmup, --config, --threads, --native, --out, --reference, --rounds, --lopts, --problems, --tasks)`);
    }
  }
  if (!(Number.isInteger(opts.steps) && opts.steps > 0)) throw new Error(`--steps must be a positive integer, got ${opts.steps}`);
  if (!(Number.isInteger(opts.warmup) && opts.warmup >= 0)) throw new Error(`--warmup must be a non-negative integer, got ${opts.warmup}`);
  if (!(opts.threads === 1 || opts.threads === 2)) throw new Error(`--threads must be 1 or 2, got ${opts.threads}`);
  if (opts.rounds === 0) opts.rounds = opts.reference ? 2 : 1;
  if (!(Number.isInteger(opts.rounds) && opts.rounds > 0)) throw new Error(`--rounds must be a positive integer, got ${opts.rounds}`);
  return opts;
}

function markdown(results: BenchResult[], mm: { square1024: number; thin: number }, machine: string, ref: ReferenceResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.config} (${r.experiment}) | ${r.backend} | ${r.kernels} | ${r.threads} | ${r.outerStepsPerSec.toFixed(3)} | ${r.secondsPerStep.toFixed(3)} | ${Math.round(r.innerTaskStepsPerSec)} | ${r.gflopPerOuterStep.toFixed(2)} | ${r.achievedGflops.toFixed(2)} | ${r.fractionOfPeak === null ? '-' : `${(100 * r.fractionOfPeak).toFixed(0)}% of ${r.peakGflops!.toFixed(0)}`} | ${r.peakRssMB.toFixed(0)} | ${r.numTensorsBefore} → ${r.numTensorsAfter} | ${r.secondsToFirstStep.toFixed(2)} | ${r.referenceStepsPerSec} |`,
  );
  const vs = ref.length
    ? [
        '',
        'Against the real learned_optimization on this machine (runs alternated; medians):',
        '',
        '| config | lopt-ts outer steps/s | reference outer steps/s | ratio | lopt-ts first step s | reference first step s (with compilation) |',
        '|---|---|---|---|---|---|',
        ...compareWithReference(results, ref).map(
          (c) => `| ${c.config} | ${c.ours.toFixed(3)} | ${c.reference.toFixed(3)} | ${c.ratio.toFixed(2)}x | ${c.oursFirstStep.toFixed(2)} | ${c.referenceFirstStep.toFixed(1)} |`,
        ),
      ]
    : [];
  return [
    `# lopt-ts meta-training benchmark`,
    '',
    `Machine: ${machine}. Date: ${new Date().toISOString()}.`,
    '',
    '| config | backend | kernels | threads | outer steps/s | s/step | inner task-steps/s | GFLOP/step | GFLOP/s | of the FMA peak | peak RSS MB | numTensors | first step s | notebook accelerator steps/s |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    ...vs,
    '',
    `Backend matMul (main thread): ${mm.square1024.toFixed(2)} GFLOP/s for 1024x1024x1024, ${mm.thin.toFixed(2)} GFLOP/s for [19280,32]x[32,32].`,
    '',
  ].join('\n');
}

export async function main(argv = process.argv.slice(2)): Promise<BenchResult[]> {
  const opts = parseArgs(argv);
  process.env.LOPT_QUIET = process.env.LOPT_QUIET ?? '1';
  process.env.LOPT_NATIVE = opts.native; // read by the main thread and the worker threads
  loadBuiltinLibs();
  await initBackend(opts.backend);
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, tfjs ${tf.version_core}`;
  const log = (s: string) => process.stderr.write(s + '\n');
  if (opts.suite === 'lopts') {
    const { subjects, problems } = selectLoptBench(opts.lopts ?? [], opts.problems ?? []);
    const lopts = benchLearnedOptimizers({ steps: opts.steps, warmup: opts.warmup, subjects, problems, log });
    fs.mkdirSync(opts.out, { recursive: true });
    fs.writeFileSync(path.join(opts.out, 'lopts.json'), JSON.stringify({ machine, backend: tf.getBackend(), options: opts, results: lopts }, null, 2) + '\n');
    const md = loptBenchMarkdown(lopts, machine);
    fs.writeFileSync(path.join(opts.out, 'lopts.md'), md);
    process.stdout.write(md);
    return [];
  }
  if (opts.suite === 'tasks') {
    const tasks = await benchTasks({ steps: opts.steps, warmup: opts.warmup, log, subjects: opts.tasks ? selectTaskBenchSubjects(opts.tasks) : undefined });
    fs.mkdirSync(opts.out, { recursive: true });
    fs.writeFileSync(path.join(opts.out, 'tasks.json'), JSON.stringify({ machine, backend: tf.getBackend(), native: nativeKernelsStatus(), options: opts, results: tasks }, null, 2) + '\n');
    const md = taskBenchMarkdown(tasks, machine, opts.native);
    fs.writeFileSync(path.join(opts.out, 'tasks.md'), md);
    process.stdout.write(md);
    return [];
  }
  const mm = await matMulGflops();
  log(nativeKernelsStatus());
  const cores = Math.min(opts.threads, os.cpus().length);
  const peak = await fmaPeakGflops(cores);
  log(peak === null ? 'FMA peak: not measured (no native kernels)' : `FMA peak: ${peak.toFixed(1)} GFLOP/s on ${cores} core(s)`);
  log(`backend ${tf.getBackend()}: matMul ${mm.square1024.toFixed(2)} GFLOP/s (1024^3), ${mm.thin.toFixed(2)} GFLOP/s ([19280,32]x[32,32])`);
  const results: BenchResult[] = [];
  const reference: ReferenceResult[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (const c of opts.configs) {
      const r = await runConfig(c, opts, log);
      r.peakGflops = peak;
      r.fractionOfPeak = peak ? r.achievedGflops / peak : null;
      results.push(r);
      log(`${c}: ${r.outerStepsPerSec.toFixed(3)} outer steps/s (${r.secondsPerStep.toFixed(3)} s/step), ${r.achievedGflops.toFixed(2)} GFLOP/s, peak RSS ${r.peakRssMB.toFixed(0)} MB, numTensors ${r.numTensorsBefore} -> ${r.numTensorsAfter}, first step after ${r.secondsToFirstStep.toFixed(2)} s`);
      if (opts.reference) {
        const ref = runReference(opts.reference, c, opts);
        reference.push(ref);
        log(`${c} reference: ${ref.stepsPerSec.toFixed(3)} outer steps/s, first step after ${ref.secondsToFirstStep.toFixed(1)} s`);
      }
    }
  }
  fs.mkdirSync(opts.out, { recursive: true });
  const payload = { machine, backend: tf.getBackend(), matMulGflops: mm, options: opts, results, reference, comparison: reference.length ? compareWithReference(results, reference) : [] };
  fs.writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify(payload, null, 2) + '\n');
  const md = markdown(results, mm, machine, reference);
  fs.writeFileSync(path.join(opts.out, 'results.md'), md);
  process.stdout.write(md);
  return results;
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
