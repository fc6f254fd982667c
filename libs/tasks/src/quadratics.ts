/**
 * Quadratic tasks and families (reference `tasks/quadratics.py`), batched over a leading task
 * axis. A family's task param is unstacked (`[dim]`) or stacked (`[N, dim]`); the loss broadcasts
 * either against params `[N, dim]`.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { random, registerPlugin, type PRNGKey, type PyTree } from '@lopt/core';
import { SPLITS, type Batch, type Datasets, type HostLossAndGrad, type LossAndGrad, type ModelState, type Params, type SplitName, type Task } from './base';
import { NoiseBatchStream } from './datasets/batch_streams';
import { cachedDatasets } from './datasets/cache';
import { SplitDatasets } from './datasets/splits';
import { BaseTask, BaseTaskFamily, requireKeys, stackedNormal, stackedUniform, stopGradient, tidyTree } from './task';

// Each configurable class parses its options with its schema: the schemas hold every default.
const dimConfig = (d: number) => z.object({ dim: z.number().int().positive().default(d) }).strict();
const QuadraticConfig = dimConfig(10);
const NoisyMeanQuadraticConfig = z.object({ dim: z.number().int().positive().default(2), noiseStdev: z.number().nonnegative().default(1) }).strict();
const NoisyQuadraticFamilyConfig = z.object({ dim: z.number().int().positive().default(10), cov: z.number().nonnegative().default(0.1) }).strict();
const NoConfig = z.object({}).strict();
/** `new X(10)` is `new X({ dim: 10 })`, as the reference's positional `dim`. */
const dimArg = (config: number | { dim?: number }) => (typeof config === 'number' ? { dim: config } : config);

/** `QuadraticTask(dim=10)`: loss Σ p², init N(0, 1). */
export class QuadraticTask extends BaseTask {
  readonly name: string = 'QuadraticTask';
  readonly dim: number;
  constructor(config: number | z.input<typeof QuadraticConfig> = {}) {
    super();
    this.dim = QuadraticConfig.parse(dimArg(config)).dim;
  }
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [this.dim]);
  }
  numParams(): number {
    return this.dim;
  }
  lossBatch(params: Params): tf.Tensor {
    return tf.tidy(() => tf.sum(tf.square(params as tf.Tensor), -1));
  }
}

/** `LogQuadraticTask`: loss log Σ p², init N(0, 1) `[10]`. */
export class LogQuadraticTask extends BaseTask {
  readonly name: string = 'LogQuadraticTask';
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [10]);
  }
  numParams(): number {
    return 10;
  }
  lossBatch(params: Params): tf.Tensor {
    return tf.tidy(() => tf.log(tf.sum(tf.square(params as tf.Tensor), -1)));
  }
}

/** `SumQuadraticTask`: params {a, b} `[10]` each (split key), loss Σ (a + b)². */
export class SumQuadraticTask extends BaseTask {
  readonly name: string = 'SumQuadraticTask';
  initBatch(keys: PRNGKey[]): Params {
    const ks = keys.map((k) => random.split(k));
    return { a: stackedNormal(ks.map((k) => k[0]), [10]), b: stackedNormal(ks.map((k) => k[1]), [10]) };
  }
  numParams(): number {
    return 20;
  }
  lossBatch(params: Params): tf.Tensor {
    const p = params as { a: tf.Tensor; b: tf.Tensor };
    return tf.tidy(() => tf.sum(tf.square(tf.add(p.a, p.b)), -1));
  }
}

/**
 * `NoisyMeanQuadraticTask(dim=2, noise_stdev=1)`: fixed Hessian H = A Aᵀ with A ~ N(0,1) from key 7;
 * loss (p − n)ᵀ H (p − n) with noise n = stdev · N(0, 1) from the second half of split(key);
 * init N(0, 1)·10 of shape `[dim, 1]`.
 */
export class NoisyMeanQuadraticTask extends BaseTask {
  readonly name: string = 'NoisyMeanQuadraticTask';
  readonly dim: number;
  readonly stdev: number;
  private hessData: Float32Array;
  constructor(config: z.input<typeof NoisyMeanQuadraticConfig> = {}) {
    super();
    const c = NoisyMeanQuadraticConfig.parse(config);
    this.dim = c.dim;
    this.stdev = c.noiseStdev;
    const d = this.dim;
    const a = random.normalArray(random.PRNGKey(7), d * d);
    this.hessData = new Float32Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += a[i * d + k] * a[j * d + k];
        this.hessData[i * d + j] = s;
      }
  }
  get hess(): tf.Tensor2D {
    return tf.tensor2d(this.hessData, [this.dim, this.dim]);
  }
  numParams(): number {
    return this.dim;
  }
  initBatch(keys: PRNGKey[]): Params {
    return tf.tidy(() => tf.mul(stackedNormal(keys, [this.dim, 1]), 10));
  }
  lossBatch(params: Params, keys: PRNGKey[] | null): tf.Tensor {
    const ks = requireKeys(keys, this.name).map((k) => random.split(k)[1]);
    return tf.tidy(() => {
      const p = params as tf.Tensor; // [N, dim, 1]
      const n = p.shape[0];
      const noise = tf.mul(stackedNormal(ks, [this.dim, 1]), this.stdev);
      const d = tf.reshape(tf.sub(p, noise), [n, this.dim]);
      return tf.sum(tf.mul(tf.matMul(d, this.hess), d), -1);
    });
  }
}

/** The shared dummy noise datasets: one scalar N(0, 1) per batch (`noise_datasets`). */
export function noiseDatasets(): Datasets {
  return cachedDatasets('noise_datasets', () =>
    new SplitDatasets(
      Object.fromEntries(SPLITS.map((s, i) => [s, new NoiseBatchStream([], 1000 + i)])) as Record<SplitName, NoiseBatchStream>,
    ),
  );
}

/** `batch_datasets`: a `[4, 2]` N(0, 1) batch per step (ignored by the loss). */
export function batchDatasets(): Datasets {
  return cachedDatasets('batch_datasets', () =>
    new SplitDatasets(
      Object.fromEntries(SPLITS.map((s, i) => [s, new NoiseBatchStream([4, 2], 2000 + i)])) as Record<SplitName, NoiseBatchStream>,
    ),
  );
}

/** `BatchQuadraticTask`: Σ p² with a dummy `[4, 2]` noise dataset; init N(0, 1) `[10]`. */
export class BatchQuadraticTask extends BaseTask {
  readonly name: string = 'BatchQuadraticTask';
  constructor() {
    super();
    this.datasets = batchDatasets();
  }
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [10]);
  }
  numParams(): number {
    return 10;
  }
  lossBatch(params: Params): tf.Tensor {
    return tf.tidy(() => tf.sum(tf.square(params as tf.Tensor), -1));
  }
}

/** The task of `FixedDimQuadraticFamily`: Σ_j (t_j − p_j)² (sum, not mean), data ignored. */
export class FixedDimQuadraticTask extends BaseTask {
  readonly name: string = '_Task';
  constructor(
    readonly target: tf.Tensor,
    readonly dim: number,
  ) {
    super();
  }
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [this.dim]);
  }
  lossBatch(params: Params): tf.Tensor {
    return tf.tidy(() => tf.sum(tf.square(tf.sub(this.target, params as tf.Tensor)), -1));
  }
  /** Hand-written: loss Σ (t − p)², gradient 2 (p − t). */
  override valueAndGradBatch(params: Params, _s: ModelState, _k: PRNGKey[] | null, _d: Batch, opts: { withAux?: boolean } = {}): LossAndGrad {
    return tidyTree(() => {
      const diff = tf.sub(params as tf.Tensor, this.target);
      const out = { loss: tf.sum(tf.square(diff), -1), grad: tf.mul(diff, 2), state: null } as {
        loss: tf.Tensor;
        grad: tf.Tensor;
        state: null;
        aux?: Record<string, tf.Tensor>;
      };
      if (opts.withAux) out.aux = {};
      return out;
    });
  }
  /**
   * The same on host memory (see `Task.hostLossAndGrad`), in float32 as the tf.js ops: d = p − t,
   * loss Σ d² summed in order, gradient 2d; the identity normalizer.
   */
  hostLossAndGrad(params: Params): HostLossAndGrad | null {
    const p = params as tf.Tensor;
    if (!(p instanceof tf.Tensor) || p.dtype !== 'float32' || this.target.dtype !== 'float32' || p.shape.join() !== this.target.shape.join()) return null;
    const dim = this.dim;
    return {
      fixed: [this.target],
      run: ([t], [x], _data, loss, [g]) => {
        for (let i = 0; i < loss.length; i++) {
          let sum = 0;
          for (let j = i * dim; j < (i + 1) * dim; j++) {
            const d = Math.fround(x[j] - t[j]);
            g[j] = 2 * d;
            sum = Math.fround(sum + Math.fround(d * d));
          }
          loss[i] = sum;
        }
      },
      normalize: () => undefined,
    };
  }
}

/** `FixedDimQuadraticFamily(dim=10)`: target t ~ N(0, I) `[dim]`; no data; identity normalizer. */
export class FixedDimQuadraticFamily extends BaseTaskFamily {
  readonly name: string = 'FixedDimQuadraticFamily';
  readonly dim: number;
  constructor(config: number | z.input<typeof QuadraticConfig> = {}) {
    super();
    this.dim = QuadraticConfig.parse(dimArg(config)).dim;
  }
  sampleBatch(keys: PRNGKey[]): PyTree {
    return stackedNormal(keys, [this.dim]);
  }
  valueCounts(): { taskParam: number; params: number } {
    return { taskParam: this.dim, params: this.dim };
  }
  taskFn(taskParam: PyTree): Task {
    return new FixedDimQuadraticTask(taskParam as tf.Tensor, this.dim);
  }
}

/** The task of `FixedDimQuadraticFamilyData`: Σ (t − p)² + data (a scalar noise datum). */
export class FixedDimQuadraticDataTask extends BaseTask {
  readonly name: string = '_Task';
  constructor(
    readonly target: tf.Tensor,
    readonly dim: number,
    datasets: Datasets,
  ) {
    super();
    this.datasets = datasets;
  }
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [this.dim]);
  }
  lossBatch(params: Params, _keys: PRNGKey[] | null, data: Batch): tf.Tensor {
    return tf.tidy(() => {
      const l = tf.sum(tf.square(tf.sub(this.target, params as tf.Tensor)), -1);
      return tf.add(l, tf.reshape(data as tf.Tensor, l.shape));
    });
  }
  override lossWithStateAndAuxBatch(params: Params, state: ModelState, keys: PRNGKey[] | null, data: Batch) {
    const { loss, state: s } = this.lossWithStateBatch(params, state, keys, data);
    const p = params as tf.Tensor;
    const aux = tf.tidy(() => ({ l2: tf.mean(tf.square(p), -1), l1: tf.mean(tf.abs(p), -1) }));
    return { loss, state: s, aux };
  }
  override normalizer(loss: tf.Tensor): tf.Tensor {
    return tf.clipByValue(loss, 0, 1000);
  }
}

/** `FixedDimQuadraticFamilyData(dim)`: adds a scalar noise datum; aux l2/l1; normalizer clip(x, 0, 1000). */
export class FixedDimQuadraticFamilyData extends BaseTaskFamily {
  readonly name: string = 'FixedDimQuadraticFamilyData';
  readonly dim: number;
  constructor(config: number | z.input<typeof QuadraticConfig> = {}) {
    super();
    this.dim = QuadraticConfig.parse(dimArg(config)).dim;
    this.datasets = noiseDatasets();
  }
  sampleBatch(keys: PRNGKey[]): PyTree {
    return stackedNormal(keys, [this.dim]);
  }
  valueCounts(): { taskParam: number; params: number } {
    return { taskParam: this.dim, params: this.dim };
  }
  taskFn(taskParam: PyTree): Task {
    return new FixedDimQuadraticDataTask(taskParam as tf.Tensor, this.dim, this.datasets!);
  }
}

/**
 * The task of `NoisyQuadraticFamily`: loss Σ (s ⊙ (c − p))² + (g − stop_gradient(g)) with
 * g = cov · N(0, 1) ⊙ p: the value is the clean loss, the gradient gets multiplicative noise.
 */
export class NoisyQuadraticTask extends BaseTask {
  readonly name: string = '_Task';
  constructor(
    readonly center: tf.Tensor,
    readonly scaling: tf.Tensor,
    readonly dim: number,
    readonly cov: number,
  ) {
    super();
  }
  initBatch(keys: PRNGKey[]): Params {
    return stackedNormal(keys, [this.dim]);
  }
  lossBatch(params: Params, keys: PRNGKey[] | null): tf.Tensor {
    const ks = requireKeys(keys, 'NoisyQuadraticFamily task');
    return tf.tidy(() => {
      const p = params as tf.Tensor;
      const noise = tf.mul(tf.mul(stackedNormal(ks, [this.dim]), this.cov), p);
      const gradNoise = tf.sub(noise, stopGradient(noise));
      return tf.sum(tf.add(tf.square(tf.mul(this.scaling, tf.sub(this.center, p))), gradNoise), -1);
    });
  }
}

/** `NoisyQuadraticFamily(dim, cov)`: task param [center ~ N(0,1), scale ~ U[0,1)·25]. */
export class NoisyQuadraticFamily extends BaseTaskFamily {
  readonly name: string = 'NoisyQuadraticFamily';
  readonly dim: number;
  readonly cov: number;
  readonly scaleConstant = 25;
  constructor(config: z.input<typeof NoisyQuadraticFamilyConfig> = {}) {
    super();
    const c = NoisyQuadraticFamilyConfig.parse(config);
    this.dim = c.dim;
    this.cov = c.cov;
  }
  sampleBatch(keys: PRNGKey[]): PyTree {
    const ks = keys.map((k) => random.split(k));
    const center = stackedNormal(ks.map((k) => k[0]), [this.dim]);
    const scale = tf.tidy(() => tf.mul(stackedUniform(ks.map((k) => k[1]), [this.dim]), this.scaleConstant));
    return [center, scale];
  }
  valueCounts(): { taskParam: number; params: number } {
    return { taskParam: 2 * this.dim, params: this.dim };
  }
  taskFn(taskParam: PyTree): Task {
    const [center, scale] = taskParam as [tf.Tensor, tf.Tensor];
    return new NoisyQuadraticTask(center, scale, this.dim, this.cov);
  }
}

// ---- registration ----
registerPlugin({ kind: 'task', name: 'QuadraticTask', description: 'Σ p² over a dim-vector, init N(0,1)', schema: QuadraticConfig, create: (c) => new QuadraticTask(c), cls: QuadraticTask });
registerPlugin({ kind: 'task', name: 'LogQuadraticTask', description: 'log Σ p² over a 10-vector', schema: NoConfig, create: () => new LogQuadraticTask(), cls: LogQuadraticTask });
registerPlugin({ kind: 'task', name: 'SumQuadraticTask', description: 'Σ (a + b)² with two 10-vectors', schema: NoConfig, create: () => new SumQuadraticTask(), cls: SumQuadraticTask });
registerPlugin({
  kind: 'task',
  name: 'NoisyMeanQuadraticTask',
  description: 'quadratic with a fixed random Hessian and a noisy mean',
  schema: NoisyMeanQuadraticConfig,
  create: (c) => new NoisyMeanQuadraticTask(c),
  cls: NoisyMeanQuadraticTask,
});
registerPlugin({ kind: 'task', name: 'BatchQuadraticTask', description: 'Σ p² with a dummy [4,2] noise dataset', schema: NoConfig, create: () => new BatchQuadraticTask(), cls: BatchQuadraticTask });
registerPlugin({
  kind: 'task_family',
  name: 'FixedDimQuadraticFamily',
  description: 'Σ (t − p)² with a sampled N(0,I) target, no data',
  schema: QuadraticConfig,
  create: (c) => new FixedDimQuadraticFamily(c),
  cls: FixedDimQuadraticFamily,
});
registerPlugin({
  kind: 'task_family',
  name: 'FixedDimQuadraticFamilyData',
  description: 'Σ (t − p)² + scalar noise datum; aux l2/l1; normalizer clip(0, 1000)',
  schema: QuadraticConfig,
  create: (c) => new FixedDimQuadraticFamilyData(c),
  cls: FixedDimQuadraticFamilyData,
});
registerPlugin({
  kind: 'task_family',
  name: 'NoisyQuadraticFamily',
  description: 'scaled quadratic with random center/scale and multiplicative gradient noise',
  schema: NoisyQuadraticFamilyConfig,
  create: (c) => new NoisyQuadraticFamily(c),
  cls: NoisyQuadraticFamily,
});
