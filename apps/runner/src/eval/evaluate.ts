/**
 * `lopt eval`: train one task with a saved learned optimizer and with hand-designed baselines,
 * for the same steps and seeds (`singleTaskTrainingCurves`, reference `eval_training.py`), and
 * report final / mean train, outer_valid and test losses (mean and std over seeds) as markdown,
 * JSON, a plot of the mean training curves and TensorBoard events.
 *
 * Fairness: seed k uses the same key (hence the same initial task params, the same sampled task
 * for a task family, and the same data order) for every optimizer.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Registry, atomicWriteFile, random, treeDispose } from '@lopt/core';
import { HyperV2, VELO_HYPER_V2_OPTIONS, VeLO, type LearnedOptimizer, type Optimizer } from '@lopt/optimizers';
import { EVAL_SPLITS, type TrainingCurves } from '@lopt/estimators';
import { checkThetaStructure } from '../flax_msgpack';
import { makeEvalTask, nonFiniteLeaves, renderLossPlot, resolveEvalCurveOptions, seedTrainingCurves, SummaryWriter, type Series } from '@lopt/training';
import { loadThetaFile, type LoadedParams } from './params';

/** `--lopt VeLO`: the prefab (reference research/general_lopt/prefab.py) on a HyperV2 θ. */
export const VELO = 'VeLO';

export interface VeLOEvalConfig {
  /** prefab's weight_decay (0: no WeightDecayWrapper) */
  weightDecay: number;
  /** prefab's max_training_steps: longer runs accumulate gradients */
  maxTrainingSteps: number;
  /** the HyperV2 the θ belongs to (prefab's base_lopt_fn); default VeLO's configuration */
  hyperV2: Record<string, unknown>;
}

/** `--lopt-config` for `--lopt VeLO`, checked: `{weightDecay?, maxTrainingSteps?, hyperV2?}`. */
export function veloConfig(raw: Record<string, unknown>, registry: Registry): VeLOEvalConfig {
  const allowed = ['weightDecay', 'maxTrainingSteps', 'hyperV2'];
  const extra = Object.keys(raw).filter((k) => !allowed.includes(k));
  if (extra.length) throw new Error(`--lopt-config for VeLO: unknown field(s) ${extra.join(', ')} (allowed: ${allowed.join(', ')})`);
  const weightDecay = raw.weightDecay ?? 0;
  if (typeof weightDecay !== 'number' || !(weightDecay >= 0) || !Number.isFinite(weightDecay)) throw new Error(`--lopt-config for VeLO: weightDecay must be a finite number >= 0, got ${JSON.stringify(raw.weightDecay)}`);
  const maxTrainingSteps = raw.maxTrainingSteps ?? 150_000;
  if (!Number.isSafeInteger(maxTrainingSteps) || (maxTrainingSteps as number) < 1) throw new Error(`--lopt-config for VeLO: maxTrainingSteps must be an integer >= 1, got ${JSON.stringify(raw.maxTrainingSteps)}`);
  const hyperV2 = registry.parseConfig('learned_optimizer', 'HyperV2', raw.hyperV2 ?? VELO_HYPER_V2_OPTIONS) as Record<string, unknown>;
  return { weightDecay, maxTrainingSteps: maxTrainingSteps as number, hyperV2 };
}

export interface BaselineSpec {
  /** Registered optimizer name ('Adam', 'SGD', ...). */
  name: string;
  learningRate: number | null;
  /** As written on the command line. */
  spec: string;
}

/** `adam:1e-3,sgd:0.1` -> registered optimizer names (case-insensitive) with learning rates. */
export function parseBaselines(raw: string, registry: Registry): BaselineSpec[] {
  const s = raw.trim();
  if (!s || s.toLowerCase() === 'none') return [];
  const names = registry.list('optimizer').map((e) => e.name);
  return s.split(',').map((part) => {
    const [n, lr, ...extra] = part.trim().split(':');
    const name = names.find((x) => x.toLowerCase() === n.trim().toLowerCase());
    if (!name || extra.length) {
      throw new Error(`--baselines: unknown optimizer '${part.trim()}' (expected NAME[:LR], NAME one of ${names.map((x) => x.toLowerCase()).join(', ')})`);
    }
    let learningRate: number | null = null;
    if (lr !== undefined && lr.trim() !== '') {
      learningRate = Number(lr);
      if (!(Number.isFinite(learningRate) && learningRate > 0)) throw new Error(`--baselines: learning rate of '${part.trim()}' must be a positive number, got '${lr}'`);
    }
    return { name, learningRate, spec: part.trim() };
  });
}

export interface EvalOptions {
  paramsPath: string;
  task: string;
  taskConfig?: Record<string, unknown>;
  steps: number;
  baselines: BaselineSpec[];
  seeds: number;
  /** Seed k (0-based) uses PRNGKey(seed + k). */
  seed?: number;
  out: string;
  /** Learned optimizer name; default: the run's config.json, else MLPLOpt. */
  lopt?: string;
  loptConfig?: Record<string, unknown>;
  evalEvery?: number;
  evalBatches?: number;
  lastEvalBatches?: number;
  registry: Registry;
  log?: (line: string) => void;
}

export interface Stat {
  mean: number;
  std: number;
  perSeed: number[];
}

export interface OptimizerResult {
  label: string;
  kind: 'learned' | 'baseline';
  /** final / mean loss per split ('train', 'outer_valid', 'test'), from the evaluations. */
  final: Record<string, Stat>;
  mean: Record<string, Stat>;
  /** The per-step minibatch training loss: final and mean. */
  trainStepFinal: Stat;
  trainStepMean: Stat;
  /** Mean over seeds of the curves. */
  curves: { 'train/xs': number[]; 'train/loss': number[]; 'eval/xs': number[]; [k: string]: number[] };
  seconds: number;
}

export interface EvalReport {
  params: { path: string; source: string; format: string; step: number | null };
  learnedOptimizer: { name: string; config: Record<string, unknown> };
  task: { name: string; config: Record<string, unknown>; isFamily: boolean };
  steps: number;
  seeds: number[];
  evalEvery: number;
  evalBatches: number;
  lastEvalBatches: number;
  results: OptimizerResult[];
  files: { markdown: string; json: string; png: string; svg: string; tensorboard: string };
  createdAt: string;
}

export function stat(xs: number[]): Stat {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n) : 0;
  return { mean, std, perSeed: xs };
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function meanCurves(all: TrainingCurves[]): OptimizerResult['curves'] {
  const out: Record<string, number[]> = {};
  for (const k of Object.keys(all[0])) {
    if (k.endsWith('/xs')) out[k] = all[0][k];
    else if (k === 'train/loss' || /^eval\/[^/]+\/loss$/.test(k)) out[k] = all[0][k].map((_, i) => meanOf(all.map((c) => c[k][i])));
  }
  return out as OptimizerResult['curves'];
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9_.=-]+/g, '_').replace(/^_+|_+$/g, '');
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(3) : v.toFixed(4);
}

export function markdownTable(results: OptimizerResult[]): string {
  const cols: Array<[string, (r: OptimizerResult) => Stat]> = [];
  for (const s of EVAL_SPLITS) {
    cols.push([`${s} final`, (r) => r.final[s]], [`${s} mean`, (r) => r.mean[s]]);
  }
  const head = `| optimizer | ${cols.map((c) => c[0]).join(' | ')} |`;
  const sep = `| --- | ${cols.map(() => '---:').join(' | ')} |`;
  const best = cols.map(([, f]) => Math.min(...results.map((r) => f(r).mean)));
  const rows = results.map(
    (r) =>
      `| ${r.label} | ${cols
        .map(([, f], j) => {
          const s = f(r);
          const cell = `${fmt(s.mean)} ± ${fmt(s.std)}`;
          return results.length > 1 && s.mean === best[j] ? `**${cell}**` : cell;
        })
        .join(' | ')} |`,
  );
  return [head, sep, ...rows].join('\n');
}

export function markdownReport(rep: EvalReport): string {
  return [
    `# lopt eval: ${rep.task.name}`,
    '',
    `- learned optimizer: ${rep.learnedOptimizer.name} from \`${rep.params.source}\` (${rep.params.format}${rep.params.step !== null ? `, step ${rep.params.step}` : ''})`,
    `- task: ${rep.task.name}${Object.keys(rep.task.config).length ? ` ${JSON.stringify(rep.task.config)}` : ''}${rep.task.isFamily ? ' (task family: one sampled task per seed)' : ''}`,
    `- ${rep.steps} steps, seeds ${rep.seeds.join(', ')}; evaluation every ${rep.evalEvery} steps on ${rep.evalBatches} batches (${rep.lastEvalBatches} at the end)`,
    `- cells: mean ± std over seeds; "final" = the evaluation after the last step, "mean" = the mean over all evaluations; best mean in bold`,
    '',
    markdownTable(rep.results),
    '',
    `Per-step minibatch training loss (final / mean): ${rep.results.map((r) => `${r.label} ${fmt(r.trainStepFinal.mean)} / ${fmt(r.trainStepMean.mean)}`).join('; ')}.`,
    '',
    `Wall time: ${rep.results.map((r) => `${r.label} ${r.seconds.toFixed(1)} s`).join('; ')}.`,
    '',
  ].join('\n');
}

export async function runEval(o: EvalOptions): Promise<EvalReport> {
  const log = o.log ?? (() => {});
  const registry = o.registry;
  if (!(Number.isInteger(o.steps) && o.steps >= 1)) throw new Error(`--steps must be an integer >= 1, got ${o.steps}`);
  if (!(Number.isInteger(o.seeds) && o.seeds >= 1)) throw new Error(`--seeds must be an integer >= 1, got ${o.seeds}`);
  const curveOpts = resolveEvalCurveOptions(o.steps, o);
  const { evalEvery, evalBatches, lastEvalBatches } = curveOpts;
  const baseSeed = o.seed ?? 0;
  const seeds = Array.from({ length: o.seeds }, (_, k) => baseSeed + k);

  // --- task ---
  const { task: taskObj, config: taskConfig, isFamily: family } = makeEvalTask(registry, o.task, o.taskConfig ?? {});

  // --- learned optimizer and θ ---
  const loaded: LoadedParams = await loadThetaFile(o.paramsPath);
  const fromRun = loaded.runConfig?.learnedOptimizer;
  const loptName = o.lopt ?? fromRun?.name ?? 'MLPLOpt';
  const velo = loptName === VELO ? veloConfig(o.loptConfig ?? {}, registry) : null;
  if (!velo && !registry.has('learned_optimizer', loptName)) {
    throw new Error(`--lopt: unknown learned optimizer '${loptName}' (allowed: ${[VELO, ...registry.list('learned_optimizer').map((e) => e.name)].join(', ')})`);
  }
  const loptConfig: Record<string, unknown> = velo ? { ...velo } : (registry.parseConfig('learned_optimizer', loptName, o.loptConfig ?? (o.lopt ? {} : fromRun?.config ?? {})) as Record<string, unknown>);
  const lopt = velo ? new HyperV2(velo.hyperV2) : registry.create<LearnedOptimizer>('learned_optimizer', loptName, loptConfig);
  const template = lopt.init(random.PRNGKey(0));
  try {
    checkThetaStructure(loaded.theta, template, `params ${loaded.source} (for ${loptName})`);
  } finally {
    treeDispose(template);
  }
  const theta = loaded.theta;
  // A diverged run's θ would give NaN curves and look like a result: refuse it, naming the leaves.
  const nonFinite = nonFiniteLeaves(theta);
  if (nonFinite.length) throw new Error(`params ${loaded.source}: θ is not finite (NaN or Inf in ${nonFinite.join(', ')}); the run that wrote it diverged`);

  const optimizers: Array<{ label: string; kind: 'learned' | 'baseline'; make: () => Optimizer }> = [
    {
      label: `${loptName} (learned)`,
      kind: 'learned',
      // the prefab conditions on the training length: this evaluation's number of steps
      make: () => (velo ? new VeLO({ numTrainingSteps: o.steps, weightDecay: velo.weightDecay, maxTrainingSteps: velo.maxTrainingSteps, lopt, theta }) : lopt.optFn(theta)),
    },
    ...o.baselines.map((b) => ({
      label: b.learningRate !== null ? `${b.name}(${b.learningRate})` : b.name,
      kind: 'baseline' as const,
      make: () => registry.create<Optimizer>('optimizer', b.name, b.learningRate !== null ? { learningRate: b.learningRate } : {}),
    })),
  ];

  const results: OptimizerResult[] = [];
  const curvesBy = new Map<string, TrainingCurves[]>();
  for (const spec of optimizers) {
    const all: TrainingCurves[] = [];
    const t0 = Date.now();
    for (const seed of seeds) {
      const c = await seedTrainingCurves(taskObj, spec.make(), o.steps, seed, curveOpts);
      all.push(c);
      // the evaluated losses, as the table reports them (not the last training batch's loss)
      const lastOf = (k: string) => c[k][c[k].length - 1];
      log(`${spec.label} seed ${seed}: final train loss ${fmt(lastOf('eval/train/loss'))}, test loss ${fmt(lastOf('eval/test/loss'))}`);
    }
    const seconds = (Date.now() - t0) / 1000;
    curvesBy.set(spec.label, all);
    const final: Record<string, Stat> = {};
    const mean: Record<string, Stat> = {};
    for (const s of EVAL_SPLITS) {
      final[s] = stat(all.map((c) => c[`eval/${s}/loss`][c[`eval/${s}/loss`].length - 1]));
      mean[s] = stat(all.map((c) => meanOf(c[`eval/${s}/loss`])));
    }
    results.push({
      label: spec.label,
      kind: spec.kind,
      final,
      mean,
      trainStepFinal: stat(all.map((c) => c['train/loss'][c['train/loss'].length - 1])),
      trainStepMean: stat(all.map((c) => meanOf(c['train/loss']))),
      curves: meanCurves(all),
      seconds,
    });
  }
  treeDispose(theta);

  // --- outputs ---
  fs.mkdirSync(o.out, { recursive: true });
  const files = {
    markdown: path.join(o.out, 'eval.md'),
    json: path.join(o.out, 'eval.json'),
    png: path.join(o.out, 'eval.png'),
    svg: path.join(o.out, 'eval.svg'),
    tensorboard: path.join(o.out, 'tb'),
  };
  const report: EvalReport = {
    params: { path: o.paramsPath, source: loaded.source, format: loaded.format, step: loaded.step },
    learnedOptimizer: { name: loptName, config: loptConfig },
    task: { name: o.task, config: taskConfig, isFamily: family },
    steps: o.steps,
    seeds,
    evalEvery,
    evalBatches,
    lastEvalBatches,
    results,
    files,
    createdAt: new Date().toISOString(),
  };
  const md = markdownReport(report);
  await atomicWriteFile(files.markdown, md);
  await atomicWriteFile(files.json, JSON.stringify(report, null, 2) + '\n');

  const series: Series[] = results.map((r) => ({ name: r.label, xs: r.curves['train/xs'], ys: r.curves['train/loss'] }));
  const plot = renderLossPlot({
    series,
    title: `${o.task}: training loss (mean of ${seeds.length} seed${seeds.length > 1 ? 's' : ''})`,
    xLabel: 'step',
    yLabel: 'train loss',
  });
  await atomicWriteFile(files.svg, plot.svg);
  await atomicWriteFile(files.png, plot.png);

  // one TensorBoard run per optimizer, so the curves overlay
  for (const r of results) {
    const w = new SummaryWriter(path.join(files.tensorboard, slug(r.label)));
    r.curves['train/xs'].forEach((x, i) => w.scalar('train/loss', r.curves['train/loss'][i], x));
    for (const s of EVAL_SPLITS) {
      const ys = r.curves[`eval/${s}/loss`];
      if (ys) r.curves['eval/xs'].forEach((x, i) => w.scalar(`eval/${s}/loss`, ys[i], x));
    }
    w.text('eval/summary', md, o.steps);
    w.close();
  }
  return report;
}
