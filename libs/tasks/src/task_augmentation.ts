/**
 * Task augmentations (reference `tasks/task_augmentation.py`): wrappers that turn a Task or
 * TaskFamily into a new one, so a learned optimizer meets more varied problems.
 *
 * `ReparamWeights(task, paramScale)`: the same function with rescaled parameters. The wrapped
 * loss is f(w · s) and the initial parameters are w0 / s, so the model computes the same thing
 * but each parameter's sensitivity changes by s. By the chain rule the gradient is s · f'(w · s).
 *
 * `ReparamWeightsFamily(family, {level, paramScaleRange})` samples s per task, log-uniformly in
 * the range: one value for all parameters (`global`), one per tensor (`tensor`) or one per
 * parameter (`parameter`, where the task params hold one key per tensor instead of the values,
 * as the reference does to keep configurations small).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, registry, treeFlatten, treeLeaves, treeUnflatten, type PRNGKey, type PyTree } from '@lopt/core';
import type { Batch, LossAndGrad, LossWithState, ModelState, Params, Task, TaskFamily } from './base';
import { BaseTask, BaseTaskFamily, tidyTree } from './task';
import { taskFamilyFromEntry } from './task_entries';

/**
 * The scale of every parameter: a number or scalar tensor (all parameters), or a tree shaped like
 * the params whose leaves are scalars (one per tensor) or the tensor's shape (one per parameter).
 * With `stacked`, every leaf has a leading task axis `[N]` (N stacked tasks, each its own scale).
 */
export type ParamScale = number | tf.Tensor | PyTree;

/**
 * A task with rescaled parameters (reference `tasks/task_augmentation.py`, `ReparamWeights`): loss f(w·s),
 * initial params w0/s, gradient s·f'(w·s).
 */
export class ReparamWeights extends BaseTask {
  readonly name = 'ReparamWeights';
  readonly paramScale: ParamScale;
  readonly stacked: boolean;

  constructor(
    readonly task: Task,
    paramScale: ParamScale,
    { stacked = false }: { stacked?: boolean } = {},
  ) {
    super();
    this.paramScale = paramScale;
    this.stacked = stacked;
    this.datasets = task.datasets;
  }

  /** One scale tensor per params leaf, broadcastable against the stacked leaf `[N, ...shape]`. */
  private scales(params: Params): tf.Tensor[] {
    const leaves = treeLeaves<tf.Tensor>(params);
    const perLeaf: tf.Tensor[] =
      typeof this.paramScale === 'number' || this.paramScale instanceof tf.Tensor
        ? leaves.map(() => (typeof this.paramScale === 'number' ? tf.scalar(this.paramScale) : (this.paramScale as tf.Tensor)))
        : treeLeaves<tf.Tensor>(this.paramScale);
    if (perLeaf.length !== leaves.length) {
      throw new Error(`ReparamWeights: paramScale has ${perLeaf.length} leaves, the params ${leaves.length} (structures must match)`);
    }
    return perLeaf.map((s, i) => {
      if (!this.stacked || s.rank === 0) return s;
      // [N] or [N, ...shape] against [N, ...shape]: line the task axis up
      const tail = leaves[i].rank - s.rank;
      return tf.reshape(s, [...s.shape, ...new Array(tail).fill(1)]);
    });
  }

  private rescale(params: Params, op: (p: tf.Tensor, s: tf.Tensor) => tf.Tensor): Params {
    const [leaves, def] = treeFlatten<tf.Tensor>(params);
    const scales = this.scales(params);
    return treeUnflatten(def, leaves.map((p, i) => op(p, scales[i])));
  }

  override initWithStateBatch(keys: PRNGKey[]): [Params, ModelState] {
    const [params, state] = this.task.initWithStateBatch(keys);
    const out = tidyTree(() => this.rescale(params, (p, s) => tf.div(p, s)));
    tf.dispose(treeLeaves<tf.Tensor>(params));
    return [out, state];
  }

  initBatch(keys: PRNGKey[]): Params {
    return this.initWithStateBatch(keys)[0];
  }

  lossBatch(params: Params, keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => this.task.lossBatch(this.rescale(params, tf.mul), keys, data));
  }

  override lossWithStateBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch): LossWithState {
    const scaled = tidyTree(() => this.rescale(params, tf.mul));
    const out = this.task.lossWithStateBatch(scaled, state, keys, data);
    tf.dispose(treeLeaves<tf.Tensor>(scaled));
    return out;
  }

  override lossWithStateAndAuxBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch) {
    const scaled = tidyTree(() => this.rescale(params, tf.mul));
    const out = this.task.lossWithStateAndAuxBatch(scaled, state, keys, data);
    tf.dispose(treeLeaves<tf.Tensor>(scaled));
    return out;
  }

  /** The wrapped task's own value and gradient at w · s (its fast path, if it has one), times s. */
  override valueAndGradBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    const scaled = tidyTree(() => this.rescale(params, tf.mul));
    const inner = this.task.valueAndGradBatch(scaled, state, keys, data, opts);
    const grad = tidyTree(() => this.rescale(inner.grad, tf.mul));
    tf.dispose([...treeLeaves<tf.Tensor>(scaled), ...treeLeaves<tf.Tensor>(inner.grad)]);
    return { ...inner, grad };
  }

  override normalizer(loss: tf.Tensor): tf.Tensor {
    return this.task.normalizer(loss);
  }
}

/**
 * Granularity of {@link ReparamWeights}' scales (reference `tasks/task_augmentation.py`, `ReparamWeights`
 * `level`): one for all params, one per tensor, or one per parameter.
 */
export const REPARAM_LEVELS = ['global', 'tensor', 'parameter'] as const;
/** One of {@link REPARAM_LEVELS}. */
export type ReparamLevel = (typeof REPARAM_LEVELS)[number];

/** `exp(uniform(key, shape, log(min), log(max)))`, the exp in float32. */
function logUniform(key: PRNGKey, size: number, [min, max]: [number, number]): Float32Array {
  return random.uniformArray(key, size, Math.log(min), Math.log(max)).map((v) => Math.fround(Math.exp(v)));
}

/** Host bits of a stacked keys leaf `[N, 2]` (or one key `[2]`) as N keys. */
function keysOf(t: tf.Tensor): PRNGKey[] {
  const bits = Uint32Array.from(t.dataSync() as Int32Array, (x) => x >>> 0);
  return Array.from({ length: bits.length / 2 }, (_, i) => bits.slice(2 * i, 2 * i + 2));
}

/**
 * A family whose tasks are {@link ReparamWeights} of the wrapped family's, with scales sampled log-uniformly
 * per task at the chosen level (reference `tasks/task_augmentation.py`, `ReparamWeightsFamily`).
 */
export class ReparamWeightsFamily extends BaseTaskFamily {
  readonly name: string;
  readonly level: ReparamLevel;
  readonly paramScaleRange: [number, number];
  private shapes: number[][] | null = null;

  constructor(
    readonly taskFamily: TaskFamily,
    { level, paramScaleRange = [0.01, 100] }: { level: ReparamLevel; paramScaleRange?: [number, number] },
  ) {
    super();
    if (!REPARAM_LEVELS.includes(level)) throw new Error(`ReparamWeightsFamily: level must be one of ${REPARAM_LEVELS.join(', ')}, got '${level}'`);
    this.level = level;
    this.paramScaleRange = paramScaleRange;
    this.datasets = taskFamily.datasets;
    this.name = `ReparamWeights${level}_${taskFamily.name}`;
  }

  /** Shapes of one task's params leaves (the reference's `eval_shape` of a sampled task's init). */
  private leafShapes(): number[][] {
    if (!this.shapes) {
      const k = random.PRNGKey(0);
      const tp = this.taskFamily.sample(k);
      const [params, state] = this.taskFamily.taskFn(tp).initWithState(k);
      this.shapes = treeLeaves<tf.Tensor>(params).map((l) => l.shape);
      tf.dispose([...treeLeaves<tf.Tensor>(tp), ...treeLeaves<tf.Tensor>(params), ...treeLeaves<tf.Tensor>(state ?? [])]);
    }
    return this.shapes;
  }

  /** The params tree structure with `make(j)` at leaf j. */
  private paramsShaped(make: (j: number, shape: number[]) => tf.Tensor): PyTree {
    const k = random.PRNGKey(0);
    const tp = this.taskFamily.sample(k);
    const params = this.taskFamily.taskFn(tp).init(k);
    const [leaves, def] = treeFlatten<tf.Tensor>(params);
    const out = treeUnflatten(def, leaves.map((l, j) => make(j, l.shape)));
    tf.dispose([...treeLeaves<tf.Tensor>(tp), ...leaves]);
    return out;
  }

  /** `key1, key2 = split(key)`: the inner family samples from key1, the scales (or their keys) come from key2. */
  sampleBatch(keys: PRNGKey[]): PyTree {
    const splits = keys.map((k) => random.split(k, 2));
    const subCfg = this.taskFamily.sampleBatch(splits.map((s) => s[0]));
    const key2 = splits.map((s) => s[1]);
    if (this.level === 'global') {
      return { sub_cfg: subCfg, param_scale: tf.tensor1d(key2.map((k) => logUniform(k, 1, this.paramScaleRange)[0])) };
    }
    const numLeaves = this.leafShapes().length;
    const leafKeys = key2.map((k) => random.split(k, numLeaves)); // [N][numLeaves]
    if (this.level === 'tensor') {
      return { sub_cfg: subCfg, param_scale: this.paramsShaped((j) => tf.tensor1d(leafKeys.map((ks) => logUniform(ks[j], 1, this.paramScaleRange)[0]))) };
    }
    const asInt = (ks: PRNGKey[]) => tf.tensor2d(Int32Array.from(ks.flatMap((k) => [k[0] | 0, k[1] | 0])), [ks.length, 2], 'int32');
    return { sub_cfg: subCfg, param_scale_keys: this.paramsShaped((j) => asInt(leafKeys.map((ks) => ks[j]))) };
  }

  taskFn(taskParam: PyTree): ReparamWeights {
    const tp = taskParam as { sub_cfg: PyTree; param_scale?: PyTree; param_scale_keys?: PyTree };
    const task = this.taskFamily.taskFn(tp.sub_cfg);
    if (this.level !== 'parameter') {
      const scale = tp.param_scale as tf.Tensor | PyTree;
      const stacked = treeLeaves<tf.Tensor>(scale)[0].rank === 1;
      return new ReparamWeights(task, scale, { stacked });
    }
    // one key per tensor: the scale of each parameter, `exp(uniform(key, leaf.shape, ...))`
    const shapes = this.leafShapes();
    const [keyLeaves, def] = treeFlatten<tf.Tensor>(tp.param_scale_keys);
    const stacked = keyLeaves[0].rank === 2;
    const scales = keyLeaves.map((kl, j) => {
      const size = shapes[j].reduce((a, b) => a * b, 1);
      const rows = keysOf(kl).map((k) => logUniform(k, size, this.paramScaleRange));
      const values = new Float32Array(rows.length * size);
      rows.forEach((r, i) => values.set(r, i * size));
      return tf.tensor(values, stacked ? [rows.length, ...shapes[j]] : shapes[j], 'float32');
    });
    return new ReparamWeights(task, treeUnflatten(def, scales), { stacked });
  }
}

/**
 * Options of the `ReparamWeightsFamily` plugin (reference `tasks/task_augmentation.py`,
 * `ReparamWeightsFamily`): the wrapped family, the level and the log-uniform range of the sampled scales.
 */
export const ReparamWeightsFamilySchema = z
  .object({
    /** The family (or single task) to wrap: `{name, config}` of a registered task_family or task. */
    taskFamily: z.object({ name: z.string(), config: z.record(z.unknown()).default({}) }).strict(),
    level: z.enum(REPARAM_LEVELS),
    paramScaleRange: z
      .tuple([z.number().positive(), z.number().positive()])
      .default([0.01, 100])
      .refine(([a, b]) => a <= b, { message: 'paramScaleRange must be [min, max] with min <= max' }),
  })
  .strict();

registerPlugin({
  kind: 'task_family',
  name: 'ReparamWeightsFamily',
  description: 'rescales every parameter of another family by a log-uniform factor per task (global, per tensor or per parameter)',
  schema: ReparamWeightsFamilySchema,
  create: (c) => new ReparamWeightsFamily(taskFamilyFromEntry(registry, c.taskFamily), { level: c.level, paramScaleRange: c.paramScaleRange }),
  cls: ReparamWeightsFamily,
});
