/**
 * `npm run bench -- --suite lopts`: the cost of one update of every registered learned optimizer
 * (defaults, θ from its own init), and of HyperV2 at VeLO's size, on two parameter trees:
 *
 * - `seed-mlp`: the seed's Fashion-MNIST 8x8 MLP (64·32 + 32·10 weights, 2,410 parameters), one
 *   task (`update`) and 8 stacked tasks (`updateBatch`, what meta-training calls);
 * - `layers-1m`: the weights of a tfjs-layers model, Dense 784→1024→256→10 (1,068,810 parameters),
 *   one task: what `velo.asTfjsOptimizer()` costs per training step of a user's model.
 *
 * Each update reads one value back, so the time includes the whole update on the backend.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, random, registry, treeDispose, treeLeaves, type PyTree } from '@lopt/core';
import { HyperV2, VELO_HYPER_V2_OPTIONS, type LearnedOptimizer } from '@lopt/optimizers';

export interface LoptBenchProblem {
  name: string;
  /** one task's weight shapes */
  shapes: number[][];
  /** stacked tasks (1: the single-task `update`) */
  numTasks: number;
}

export interface LoptBenchResult {
  lopt: string;
  problem: string;
  params: number;
  numTasks: number;
  msPerUpdate: number;
  /** parameters updated per second, all tasks together */
  paramsPerSec: number;
}

/** The weight shapes of `tf.sequential` Dense layers `sizes[0] → ... → sizes[n]` (kernel, bias per layer). */
export function denseModelShapes(sizes: number[]): number[][] {
  const model = tf.sequential({
    layers: sizes.slice(1).map((units, i) => tf.layers.dense({ units, inputShape: i === 0 ? [sizes[0]] : undefined })),
  });
  const shapes = model.getWeights().map((w) => w.shape);
  model.dispose();
  return shapes;
}

export function defaultLoptBenchProblems(): LoptBenchProblem[] {
  const seed = [[64, 32], [32], [32, 10], [10]];
  return [
    { name: 'seed-mlp', shapes: seed, numTasks: 1 },
    { name: 'seed-mlp', shapes: seed, numTasks: 8 },
    { name: 'layers-1m', shapes: denseModelShapes([784, 1024, 256, 10]), numTasks: 1 },
  ];
}

/** Every registered learned optimizer with its defaults, then HyperV2 at VeLO's size. */
export function defaultLoptBenchSubjects(): Array<{ name: string; make: () => LearnedOptimizer }> {
  return [
    ...registry.list('learned_optimizer').map((e) => ({ name: e.name, make: () => registry.create<LearnedOptimizer>('learned_optimizer', e.name, {}) })),
    { name: 'HyperV2 (VeLO size)', make: () => new HyperV2({ ...VELO_HYPER_V2_OPTIONS }) },
  ];
}

/**
 * The subjects and problems named by `--lopts` / `--problems` (all of either when its list is
 * empty); an unknown name throws, listing the known ones.
 */
export function selectLoptBench(lopts: string[], problems: string[]): { subjects: Array<{ name: string; make: () => LearnedOptimizer }>; problems: LoptBenchProblem[] } {
  const pick = <T>(all: T[], names: string[], nameOf: (t: T) => string, flag: string): T[] => {
    if (names.length === 0) return all;
    const known = [...new Set(all.map(nameOf))];
    for (const n of names) if (!known.includes(n)) throw new Error(`${flag}: unknown '${n}' (known: ${known.join(', ')})`);
    return all.filter((t) => names.includes(nameOf(t)));
  };
  return {
    subjects: pick(defaultLoptBenchSubjects(), lopts, (s) => s.name, '--lopts'),
    problems: pick(defaultLoptBenchProblems(), problems, (p) => p.name, '--problems'),
  };
}

const tree = (shapes: number[][], numTasks: number, scale: number, seed: number): PyTree =>
  Object.fromEntries(shapes.map((s, i) => [`p${i}`, tf.randomNormal(numTasks === 1 ? s : [numTasks, ...s], 0, scale, 'float32', seed + i)]));

/** Times `steps` updates after `warmup` (default 1) for each subject and problem. */
export function benchLearnedOptimizers(
  opts: { steps: number; warmup?: number; problems?: LoptBenchProblem[]; subjects?: Array<{ name: string; make: () => LearnedOptimizer }>; log?: (s: string) => void },
): LoptBenchResult[] {
  const problems = opts.problems ?? defaultLoptBenchProblems();
  const subjects = opts.subjects ?? defaultLoptBenchSubjects();
  const warmup = opts.warmup ?? 1;
  const out: LoptBenchResult[] = [];
  for (const subject of subjects) {
    const lopt = subject.make();
    const theta = lopt.init(random.PRNGKey(0));
    for (const p of problems) {
      const batched = p.numTasks > 1;
      const opt = lopt.optFn(theta);
      const params = tree(p.shapes, p.numTasks, 0.1, 1);
      const grad = tree(p.shapes, p.numTasks, 0.01, 100);
      const loss = batched ? tf.fill([p.numTasks], 0.5) : tf.scalar(0.5);
      let state = batched ? opt.initBatch(params, { numSteps: 1000 }) : opt.init(params, { numSteps: 1000 });
      const step = () => {
        const next = batched ? opt.updateBatch(state, grad, { loss }) : opt.update(state, grad, { loss });
        disposeReplaced(state, next);
        state = next;
        treeLeaves<tf.Tensor>(state.params)[0].dataSync(); // wait for the whole update
      };
      for (let i = 0; i < warmup; i++) step();
      const t0 = performance.now();
      for (let i = 0; i < opts.steps; i++) step();
      const ms = (performance.now() - t0) / opts.steps;
      const count = p.shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
      const r = { lopt: subject.name, problem: p.name, params: count, numTasks: p.numTasks, msPerUpdate: ms, paramsPerSec: (count * p.numTasks) / (ms / 1000) };
      out.push(r);
      opts.log?.(`${r.lopt} on ${r.problem} (N=${r.numTasks}, ${r.params} params): ${ms.toFixed(2)} ms/update`);
      disposeReplaced([params, grad, loss], state);
      treeDispose(state);
    }
    treeDispose(theta);
  }
  return out;
}

export function loptBenchMarkdown(results: LoptBenchResult[], machine: string): string {
  const rows = results.map((r) => `| ${r.lopt} | ${r.problem} | ${r.numTasks} | ${r.params.toLocaleString('en-US')} | ${r.msPerUpdate.toFixed(2)} | ${(r.paramsPerSec / 1e6).toFixed(2)} |`);
  return [`Learned optimizers, one update (${machine}, backend ${tf.getBackend()})`, '', '| learned optimizer | params tree | tasks | params per task | ms / update | M params/s |', '|---|---|---:|---:|---:|---:|', ...rows, ''].join('\n');
}
