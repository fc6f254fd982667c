/**
 * Batch streams kept on the backend.
 *
 * `TensorBatchStream` holds one preprocessed split as tensors and gathers batches by index: each
 * epoch is a seeded permutation (key `foldIn(PRNGKey(seed), epoch)`), `floor(n / B)` batches per
 * epoch (remainder dropped). `next([K, N])` gathers K·N batches in a single `tf.gather` per leaf.
 * `NoiseBatchStream` draws fresh noise batches from keys (the quadratics' dummy data).
 */
import * as tf from '@tensorflow/tfjs';
import { coreNative, nativeUsable, random, type PRNGKey, type PyTree } from '@lopt/core';
import { LOPT_GATHER_ROWS_KERNEL, gatherRowsNative } from '../native';
import type { Batch, BatchStream } from '../base';
import type { AbstractLeaf, StreamState } from './splits';

/**
 * The indices 0..n-1 ordered by `bits` (ascending), ties in index order: a stable LSD radix sort,
 * four passes of 8 bits (~10x faster than a comparison sort for the 48,000-example FMNIST split).
 */
export function stableOrderByBits(bits: Uint32Array): Int32Array {
  const n = bits.length;
  let order = new Int32Array(n);
  let next = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const count = new Int32Array(256);
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(bits[i] >>> shift) & 255]++;
    for (let d = 0, sum = 0; d < 256; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const j = order[i];
      next[count[(bits[j] >>> shift) & 255]++] = j;
    }
    [order, next] = [next, order];
  }
  return order;
}

/**
 * `jax.random.permutation(key, n)`: rounds of a stable sort by random 32-bit keys, as JAX's
 * `_shuffle` (rounds = ceil(3 ln n / ln(2^32 - 1))).
 */
export function permutation(key: PRNGKey, n: number): Int32Array {
  const rounds = Math.ceil((3 * Math.log(Math.max(1, n))) / Math.log(0xffffffff));
  let x = new Int32Array(n);
  for (let i = 0; i < n; i++) x[i] = i;
  let k = key;
  // the bits and the sort in C where the core addon is built (the same values; ~10x faster on a
  // 60,000-example split, which a data stream shuffles every epoch)
  const native = coreNative();
  const partitionable = random.getConfig().threefryPartitionable;
  for (let r = 0; r < rounds; r++) {
    const [k1, sub] = random.split(k);
    k = k1;
    let order: Int32Array;
    if (native) {
      const bits = new Uint32Array(n);
      native.randomBits(sub[0], sub[1], partitionable, bits);
      order = new Int32Array(n);
      native.stableOrder(bits, order);
    } else order = stableOrderByBits(random.randomBits(sub, n));
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) y[i] = x[order[i]];
    x = y;
  }
  return x;
}

function prod(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * A split held as tensors `{[leaf]: [n, ...]}` (loaded lazily on first use), served in shuffled
 * batches gathered by index. With `numExamples` known up front, the stream's order (epochs,
 * shuffles, `nextIndices`) needs no data: a process that only hands out example indices (the main
 * thread of `--threads 2`, whose branch threads gather from their own copies) never loads it.
 */
export class TensorBatchStream implements BatchStream {
  private data: Record<string, tf.Tensor> | null = null;
  private n = -1;
  private perm: Int32Array | null = null;
  private epoch = 0;
  private position = 0;

  constructor(
    private readonly load: () => Record<string, tf.Tensor>,
    readonly batchSize: number,
    private readonly abstract: Record<string, AbstractLeaf>,
    private seed = 0,
    private readonly knownCount?: number,
  ) {}

  private ensure(): void {
    if (this.data) return;
    this.data = this.load();
    const ns = Object.values(this.data).map((t) => t.shape[0]);
    if (ns.some((m) => m !== ns[0])) throw new Error(`dataset leaves disagree on the number of examples: ${ns.join(', ')}`);
    if (this.knownCount !== undefined && ns[0] !== this.knownCount) throw new Error(`the split has ${ns[0]} examples, but its stream was declared with ${this.knownCount}`);
    this.setCount(ns[0]);
  }

  private setCount(n: number): void {
    this.n = n;
    if (Math.floor(this.n / this.batchSize) < 1) {
      throw new Error(`batch size ${this.batchSize} is larger than the split (${this.n} examples)`);
    }
  }

  /** The number of examples: the declared one if any (the data stays unloaded), else the data's. */
  private count(): number {
    if (this.n < 0) {
      if (this.knownCount !== undefined) this.setCount(this.knownCount);
      else this.ensure();
    }
    return this.n;
  }

  get numExamples(): number {
    return this.count();
  }

  get batchesPerEpoch(): number {
    return Math.floor(this.count() / this.batchSize);
  }

  private permFor(epoch: number): Int32Array {
    if (!this.perm) {
      const ahead = this.ahead;
      this.perm = ahead && ahead.seed === this.seed && ahead.epoch === epoch ? ahead.perm : permutation(random.foldIn(random.PRNGKey(this.seed), epoch), this.n);
      this.ahead = null;
    }
    return this.perm;
  }

  /** The next epoch's shuffle, computed ahead (e.g. while the branch threads work): a pure function of (seed, epoch). */
  private ahead: { seed: number; epoch: number; perm: Int32Array } | null = null;

  prefetch(): void {
    const n = this.count();
    const epoch = this.epoch + 1;
    if (this.ahead?.seed === this.seed && this.ahead.epoch === epoch) return;
    this.ahead = { seed: this.seed, epoch, perm: permutation(random.foldIn(random.PRNGKey(this.seed), epoch), n) };
  }

  /** Host indices of the next `count` batches (advances the stream). */
  nextIndices(count: number): Int32Array {
    const B = this.batchSize;
    const per = Math.floor(this.count() / B);
    const idx = new Int32Array(count * B);
    for (let c = 0; c < count; c++) {
      if (this.position >= per) {
        this.epoch += 1;
        this.position = 0;
        this.perm = null;
      }
      const perm = this.permFor(this.epoch);
      idx.set(perm.subarray(this.position * B, (this.position + 1) * B), c * B);
      this.position += 1;
    }
    return idx;
  }

  next(shape: number[] = []): Batch {
    return this.gather(this.nextIndices(prod(shape)), shape);
  }

  gather(idx: Int32Array, shape: number[] = []): Batch {
    this.ensure();
    if (idx.length !== prod(shape) * this.batchSize) throw new RangeError(`gather: ${idx.length} indices for shape [${shape}] of batches of ${this.batchSize}`);
    // the native row gather where it runs (the same rows, copied with the next ones requested ahead)
    const native = nativeUsable() && gatherRowsNative() !== null;
    return tf.tidy(() => {
      let it: tf.Tensor | null = null;
      const out: Record<string, tf.Tensor> = {};
      for (const [k, t] of Object.entries(this.data!)) {
        const outShape = [...shape, this.batchSize, ...t.shape.slice(1)];
        if (native && (t.dtype === 'float32' || t.dtype === 'int32')) {
          out[k] = tf.engine().runKernel(LOPT_GATHER_ROWS_KERNEL, { x: t }, { indices: idx, shape: outShape } as any) as tf.Tensor;
        } else {
          out[k] = tf.reshape(tf.gather(t, (it ??= tf.tensor1d(idx, 'int32'))), outShape);
        }
      }
      return out;
    });
  }

  abstractBatch(): PyTree {
    return Object.fromEntries(
      Object.entries(this.abstract).map(([k, v]) => [k, { shape: [this.batchSize, ...v.shape], dtype: v.dtype }]),
    );
  }

  getState(): StreamState {
    return { seed: this.seed, epoch: this.epoch, position: this.position };
  }

  setState(s: StreamState): void {
    if (s.seed !== this.seed) this.perm = null;
    if (s.epoch !== this.epoch) this.perm = null;
    this.seed = s.seed;
    this.epoch = s.epoch;
    this.position = s.position;
  }
}

/**
 * An endless stream of standard-normal noise batches of shape `batchShape` (e.g. `[4, 2]` or `[]`),
 * batch j drawn from key `foldIn(PRNGKey(seed), j)` (`position` counts batches; `epoch` stays 0).
 */
export class NoiseBatchStream implements BatchStream {
  private position = 0;
  constructor(
    private readonly batchShape: number[],
    private seed = 0,
  ) {}
  next(shape: number[] = []): Batch {
    const count = prod(shape);
    const size = prod(this.batchShape);
    const out = new Float32Array(count * size);
    const base = random.PRNGKey(this.seed);
    for (let c = 0; c < count; c++) {
      out.set(random.normalArray(random.foldIn(base, this.position), size), c * size);
      this.position += 1;
    }
    return tf.tensor(out, [...shape, ...this.batchShape], 'float32');
  }
  abstractBatch(): PyTree {
    return { shape: this.batchShape, dtype: 'float32' };
  }
  getState(): StreamState {
    return { seed: this.seed, epoch: 0, position: this.position };
  }
  setState(s: StreamState): void {
    this.seed = s.seed;
    this.position = s.position;
  }
}
