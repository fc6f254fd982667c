/**
 * `npm run bench -- --suite tasks`: inner steps/s of one task of each task family, and its speed
 * per FLOP against the image MLP (issue 15: no family more than 3x slower per FLOP).
 *
 * An inner step is what an estimator's unroll does once per step on N stacked tasks: a train batch,
 * `valueAndGradBatch` and an SGD update of the params, with one read-back (the losses). Families
 * are sampled with `sampleBatch` (one task per key); a fixed task is a family of one.
 *
 * FLOPs are counted from the kernels one step runs (`tf.profile`): each contributes `kernelFlops`
 * of its input and output shapes, 2 per multiply-add for matmuls and convolutions (their backprops
 * included), one per output value for every other kernel, and for the native image-MLP kernel the
 * multiply-adds of its layers (with the gradient: forward, dW, and dx of all but the first layer),
 * and for the native whole-network ResNet and convnet kernels those of their convolutions and
 * logits matmul.
 */
import * as tf from '@tensorflow/tfjs';
import { disposeReplaced, nativeUsable, random, registerNativeKernel, registry, treeDispose, treeFlatten, treeLeaves, treeMapN, treeUnflatten, type PyTree } from '@lopt/core';
import { CONV_NET_KERNEL, convNetKernelFlops, LOPT_IMAGE_MLP_KERNEL, RESNET_NET_KERNEL, resnetNetKernelFlops, taskFamilyFromEntry, type Batch, type ModelState, type Params } from '@lopt/tasks';

/** A task entry to time (a registry task or family with its config). */
export interface TaskBenchSubject {
  /** what the table calls it */
  label: string;
  entry: { name: string; config?: Record<string, unknown> };
}

/** One row of the tasks suite. */
export interface TaskBenchResult {
  label: string;
  task: string;
  numTasks: number;
  /** parameters of one task */
  params: number;
  /** FLOPs of one inner step of all N tasks (kernelFlops summed) */
  flopsPerStep: number;
  msPerStep: number;
  stepsPerSec: number;
  gflops: number;
  /** ms per FLOP relative to the first subject (the image MLP): 1 = as fast, 3 = three times slower */
  perFlopVsBaseline: number;
}

/** A kernel as `tf.profile` reports it. */
export interface ProfiledKernel {
  name: string;
  inputShapes: number[][];
  outputShapes: number[][];
}

const size = (s: number[] | undefined) => (s ?? []).reduce((a, b) => a * b, 1);

/**
 * FLOPs of one kernel from its shapes: 2 per multiply-add for (batched) matmuls, 2-D convolutions,
 * depthwise convolutions and their input / filter backprops; one per output value otherwise.
 */
export function kernelFlops(k: ProfiledKernel): number {
  const [a, b] = k.inputShapes;
  const out = k.outputShapes[0] ?? [];
  switch (k.name) {
    case 'BatchMatMul':
    case '_FusedMatMul': {
      // a's last two dims hold M·K in either order (transposeA or not); the output's are [M, N]
      const depth = size(a.slice(-2)) / out[out.length - 2];
      return 2 * size(out) * depth;
    }
    case 'Conv2D':
    case 'FusedConv2D': // (x, filter [kh, kw, cin, cout])
      return (2 * size(out) * size(b)) / b[3];
    case 'Conv2DBackpropInput': // (dy, filter [kh, kw, cin, cout])
      return (2 * size(a) * size(b)) / b[3];
    case 'Conv2DBackpropFilter': // (x, dy) → filter [kh, kw, cin, cout]
      return (2 * size(b) * size(out)) / out[3];
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2D': // (x, filter [kh, kw, c, mult])
      return 2 * size(out) * b[0] * b[1];
    case 'DepthwiseConv2dNativeBackpropInput': // (dy, filter)
      return 2 * size(a) * b[0] * b[1];
    case 'DepthwiseConv2dNativeBackpropFilter': // (x, dy) → filter
      return 2 * size(b) * out[0] * out[1];
    case LOPT_IMAGE_MLP_KERNEL: {
      // (x [N, B, D], label, w0 [N, in, out], ..., b0, ...) -> loss [N] (and the gradients)
      // with the gradient: forward, dW of every layer, dx of every layer but the first (as autodiff)
      const [N, B] = a;
      const layers = k.inputShapes.slice(2).filter((s) => s.length === 3).map((w) => N * B * w[1] * w[2]);
      const forward = layers.reduce((n, m) => n + m, 0);
      return 2 * (k.outputShapes.length > 1 ? 3 * forward - layers[0] : forward);
    }
    case RESNET_NET_KERNEL:
      // the whole ResNet in one call: 2 per multiply-add of its convolutions (forward, filter and
      // input gradients but the image's) and logits matmul, as the tf.js kernels above count them;
      // its batch norms, pool and adds count nothing
      return resnetNetKernelFlops(k.inputShapes, k.outputShapes);
    case CONV_NET_KERNEL:
      // the whole plain convnet in one call: 2 per multiply-add of its convolutions and logits
      // matmul, as the tf.js kernels above count them
      return convNetKernelFlops(k.inputShapes, k.outputShapes);
    case BENCH_SGD_KERNEL:
      // a multiply and a subtraction per value, as the tf.js ops it replaces count
      return 2 * k.outputShapes.reduce((n, s) => n + size(s), 0);
    default:
      return k.outputShapes.reduce((n, s) => n + size(s), 0);
  }
}

/**
 * The default subjects: the image MLP first (the per-FLOP baseline), then one task of every image
 * and language family that runs offline (Fashion-MNIST, the fortunes corpus), including the
 * families of the conv-fmnist-pes, image-family-pes and lm-transformer-pes experiments.
 */
export function defaultTaskBenchSubjects(): TaskBenchSubject[] {
  const fixed = (name: string): TaskBenchSubject => ({ label: name, entry: { name } });
  const fromExperiment = (experiment: string): TaskBenchSubject | null => {
    if (!registry.has('experiment', experiment)) return null;
    const t = (registry.parseConfig('experiment', experiment, {}) as { tasks: Array<{ name: string; config: Record<string, unknown> }> }).tasks[0];
    return { label: `${t.name} (${experiment})`, entry: { name: t.name, config: t.config } };
  };
  const candidates = [
    fixed('ImageMLP_FashionMnist_Relu128x128'),
    fixed('ImageMLP_FashionMnist8_Relu32'),
    fromExperiment('image-family-pes'),
    fixed('ImageMLPAE_FashionMnist_128x32x128_bs128'),
    fixed('Conv_FashionMnist_8_16x32'),
    fixed('Conv_FashionMnist_16_32x64x64'),
    fixed('Conv_FashionMnist_32x64x64_Tanh'),
    fromExperiment('conv-fmnist-pes'),
    fixed('Resnet_FashionMnist_MultiRuntime_0'),
    fixed('RNNLM_fortunesbytes_Patch32_LSTM128_Embed64'),
    fixed('TransformerLM_Fortunes_Bytes_4h32d2l'),
    fromExperiment('lm-transformer-pes'),
    fixed('MLPMixer_FashionMnist_tiny16'),
    fixed('VIT_FashionMnist_skinnydeep'),
  ];
  return candidates.filter((s): s is TaskBenchSubject => s !== null && (registry.has('task', s.entry.name) || registry.has('task_family', s.entry.name)));
}

/**
 * The default subjects whose label contains one of `filters` (case-insensitive), always with the
 * first (the image MLP, the per-FLOP baseline); throws when a filter matches none.
 */
export function selectTaskBenchSubjects(filters: string[]): TaskBenchSubject[] {
  const all = defaultTaskBenchSubjects();
  const hit = (s: TaskBenchSubject, f: string) => s.label.toLowerCase().includes(f.toLowerCase());
  for (const f of filters) if (!all.some((s) => hit(s, f))) throw new Error(`--tasks: '${f}' matches no task (${all.map((s) => s.label).join(', ')})`);
  return all.filter((s, i) => i === 0 || filters.some((f) => hit(s, f)));
}

/** N stacked tasks of a subject, ready to step: params, model state, the train stream. */
function setUp(subject: TaskBenchSubject, numTasks: number) {
  const family = taskFamilyFromEntry(registry, subject.entry);
  if (!family.datasets) throw new Error(`${subject.label}: no datasets, nothing to time`);
  const keys = random.split(random.PRNGKey(0), numTasks);
  const taskParam = family.sampleBatch(keys);
  const task = family.taskFn(taskParam);
  const [params, state] = task.initWithStateBatch(keys);
  return { task, taskParam, params, state, stream: family.datasets.split('train') };
}

/** The bench's inner learning rate. */
const SGD_LR = 1e-3;
/** The SGD update of every leaf in one kernel (see `sgdUpdate`). */
export const BENCH_SGD_KERNEL = 'LoptBenchSgd';
const LR32 = Math.fround(SGD_LR);

/**
 * `p - lr·g` for every leaf, as tf.js's `sub(p, mul(g, lr))` computes it (each product rounded to
 * float32, then the difference). Where a native kernel may run (wasm or cpu, no tape) all leaves go
 * through one kernel, as XLA fuses the reference's `jax.tree_util` update into one: per-leaf tf.js
 * kernels (two or three for each of the ResNet's 45 leaves) would time the bench's update, not the
 * task. Elsewhere the tf.js ops.
 */
export function sgdUpdate(params: Params, grads: Params): Params {
  if (!nativeUsable()) return treeMapN((p: tf.Tensor, g: tf.Tensor) => tf.tidy(() => tf.sub(p, tf.mul(g, SGD_LR))), params, grads);
  registerNativeKernel(BENCH_SGD_KERNEL, (inputs, attrs, io) => {
    const n = attrs.count as number;
    const outs = Array.from({ length: n }, (_, i) => io.alloc(inputs[`p${i}`].shape, 'float32'));
    for (let i = 0; i < n; i++) {
      const p = io.view(inputs[`p${i}`]);
      const g = io.view(inputs[`g${i}`]);
      const y = io.view(outs[i]);
      for (let j = 0; j < y.length; j++) y[j] = p[j] - Math.fround(g[j] * LR32);
    }
    return outs;
  });
  const [leaves, def] = treeFlatten(params as PyTree);
  const gradLeaves = treeLeaves(grads as PyTree);
  const named: Record<string, tf.Tensor> = {};
  leaves.forEach((p, i) => {
    named[`p${i}`] = p as tf.Tensor;
    named[`g${i}`] = gradLeaves[i] as tf.Tensor;
  });
  const out = tf.engine().runKernel(BENCH_SGD_KERNEL, named as any, { count: leaves.length } as any);
  return treeUnflatten(def, Array.isArray(out) ? out : [out]) as Params;
}

/** One inner step (batch, value and gradient, SGD); returns the new params and state, and the losses [N]. */
function innerStep(task: ReturnType<typeof setUp>['task'], params: Params, state: ModelState, data: Batch, step: number, numTasks: number) {
  const keys = random.split(random.PRNGKey(step + 1), numTasks);
  const out = task.valueAndGradBatch(params, state, keys, data);
  const next = sgdUpdate(params, out.grad);
  treeDispose([out.grad, out.aux ?? null]);
  return { params: next, state: out.state, loss: out.loss };
}

/** FLOPs of one inner step, counted on the kernels it runs (see the file comment). */
async function countFlops(s: ReturnType<typeof setUp>, numTasks: number): Promise<number> {
  const data = s.stream.next([numTasks]);
  const info = await tf.profile(() => {
    const r = innerStep(s.task, s.params, s.state, data, 0, numTasks);
    disposeReplaced([r.params, r.state, r.loss], [s.params, s.state]);
  });
  treeDispose(data);
  return info.kernels.reduce((n, k) => n + kernelFlops(k as unknown as ProfiledKernel), 0);
}

/** Times `steps` inner steps after `warmup` for each subject (N = numTasks stacked tasks). */
export async function benchTasks(opts: {
  steps: number;
  warmup?: number;
  numTasks?: number;
  subjects?: TaskBenchSubject[];
  log?: (s: string) => void;
}): Promise<TaskBenchResult[]> {
  const numTasks = opts.numTasks ?? 2;
  const out: TaskBenchResult[] = [];
  for (const subject of opts.subjects ?? defaultTaskBenchSubjects()) {
    let s: ReturnType<typeof setUp>;
    try {
      s = setUp(subject, numTasks);
    } catch (e) {
      opts.log?.(`${subject.label}: skipped (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    let result: TaskBenchResult;
    try {
      result = await measure(subject, s, numTasks, opts.steps, opts.warmup ?? 1, out[0]?.gflops);
    } catch (e) {
      opts.log?.(`${subject.label}: failed (${(e as Error).message.split('\n')[0]})`);
      continue;
    } finally {
      treeDispose([s.params, s.state, s.taskParam as PyTree]);
    }
    out.push(result);
    const r = result;
    opts.log?.(`${r.label}: ${r.msPerStep.toFixed(1)} ms/step, ${(r.flopsPerStep / 1e6).toFixed(1)} MFLOP/step, ${r.gflops.toFixed(2)} GFLOP/s, ${r.perFlopVsBaseline.toFixed(2)}x the image MLP per FLOP`);
  }
  return out;
}

/** Counts one step's FLOPs, then times `steps` steps after `warmup` (s is stepped in place). */
async function measure(
  subject: TaskBenchSubject,
  s: ReturnType<typeof setUp>,
  numTasks: number,
  steps: number,
  warmup: number,
  baselineGflops?: number,
): Promise<TaskBenchResult> {
  const flops = await countFlops(s, numTasks);
  let k = 0;
  const step = () => {
    const data = s.stream.next([numTasks]);
    const r = innerStep(s.task, s.params, s.state, data, k++, numTasks);
    disposeReplaced([s.params, s.state], [r.params, r.state]);
    s.params = r.params;
    s.state = r.state;
    r.loss.dataSync();
    treeDispose([data, r.loss]);
  };
  for (let i = 0; i < warmup; i++) step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const ms = (performance.now() - t0) / steps;
  const gflops = flops / (ms * 1e6);
  return {
    label: subject.label,
    task: subject.entry.name,
    numTasks,
    params: treeLeaves<tf.Tensor>(s.params).reduce((n, l) => n + l.size, 0) / numTasks,
    flopsPerStep: flops,
    msPerStep: ms,
    stepsPerSec: 1000 / ms,
    gflops,
    perFlopVsBaseline: baselineGflops === undefined ? 1 : baselineGflops / gflops,
  };
}

/** The suite's table (markdown). */
export function taskBenchMarkdown(results: TaskBenchResult[], machine: string, native: string): string {
  const rows = results.map(
    (r) =>
      `| ${r.label} | ${r.numTasks} | ${Math.round(r.params).toLocaleString('en-US')} | ${(r.flopsPerStep / 1e6).toFixed(1)} | ${r.msPerStep.toFixed(1)} | ${r.stepsPerSec.toFixed(2)} | ${r.gflops.toFixed(2)} | ${r.perFlopVsBaseline.toFixed(2)} |`,
  );
  return [
    `Inner steps of each task family (${machine}, backend ${tf.getBackend()}, native kernels ${native})`,
    '',
    '| task | tasks | params per task | MFLOP / step | ms / step | steps/s | GFLOP/s | per FLOP vs image MLP |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}
