/**
 * The truncated step of learned optimizers (reference `outer_trainers/lopt_truncated_step.py`,
 * `VectorizedLOptTruncatedStep` and `SimpleLOptTruncatedStep`): one inner training step for N
 * stacked tasks with a learned optimizer, with automatic reset when a trajectory ends.
 *
 * The integer counters are decided on the host (see host_ints.ts); the reference's vmapped
 * `lax.cond` computes both the train and the reset branch every step, we compute the reset branch
 * only on steps where some task resets, with the same values.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { envVar, nativeUsable, parseOptions, random, registerPlugin, runNativeBody, treeMap, treeMapN, treeLeaves, type HostArray, type PRNGKey, type PyTree } from '@lopt/core';
import type { TaskFamily, SplitName, Task } from '@lopt/tasks';
import { singleTaskToFamily, SPLITS } from '@lopt/tasks';
import type { LearnedOptimizer, Optimizer, OptState, Theta } from '@lopt/optimizers';
import { hostTensor, hostValues } from './host_ints';
import { NeverEndingTruncationSchedule } from './truncation_schedule';
import type { OuterState, TruncationSchedule, TruncationState } from './truncation_schedule';
import type { BatchIndices, HostRunOut, StepOptions, StepwiseData, TruncatedStep, TruncatedUnrollOut, TruncatedUnrollState } from './truncated_step';
import { replaceRows, selectRows, stateRows } from './unroll_state';

const split = z.enum(SPLITS as unknown as [SplitName, ...SplitName[]]);

/** The options of VectorizedLOptTruncatedStep and their defaults (the reference's `__init__`). */
export const VectorizedLOptTruncatedStepSchema = z
  .object({
    numTasks: z.number().int().positive(),
    randomInitialIterationOffset: z.number().int().nonnegative().default(0),
    /** null: meta-loss = training loss; 'same_data': loss of the new params on the training batch; a split name: on that split. */
    metaLossSplit: z.union([split, z.literal('same_data')]).nullable().default(null),
    outerDataSplit: split.default('train'),
    metaLossWithAuxKey: z.string().nullable().default(null),
    taskName: z.string().nullable().default(null),
  })
  .strict();
/** The options `new VectorizedLOptTruncatedStep(...)` takes (see its schema). */
export type VectorizedLOptTruncatedStepOptions = z.input<typeof VectorizedLOptTruncatedStepSchema>;

function duplicateRows(data: PyTree, times: number): PyTree {
  if (data === null || data === undefined || times === 1) return data;
  return treeMap((l: tf.Tensor) => tf.concat(new Array(times).fill(l), 0), data);
}

/**
 * `LOPT_HOST_RUNS`, checked: 'auto' (host runs where they apply; the default) or 'off' (every
 * inner step through `unrollStep`: the same values; for comparisons and troubleshooting).
 */
export function hostRunsSetting(): 'auto' | 'off' {
  const raw = (envVar('LOPT_HOST_RUNS') ?? 'auto').toLowerCase();
  if (raw !== 'auto' && raw !== 'off') throw new Error(`LOPT_HOST_RUNS='${envVar('LOPT_HOST_RUNS')}': allowed values are auto, off`);
  return raw;
}

/** N tasks trained by a learned optimizer, one inner step per call (learned_optimization/outer_trainers/lopt_truncated_step.py, `VectorizedLOptTruncatedStep`). */
export class VectorizedLOptTruncatedStep implements TruncatedStep {
  readonly numTasks: number;
  readonly randomInitialIterationOffset: number;
  readonly metaLossSplit: SplitName | 'same_data' | null;
  readonly outerDataSplit: SplitName;
  readonly metaLossWithAuxKey: string | null;
  private readonly _taskName: string | null;

  constructor(
    readonly taskFamily: TaskFamily,
    readonly learnedOpt: LearnedOptimizer,
    readonly truncSched: TruncationSchedule,
    opts: VectorizedLOptTruncatedStepOptions,
  ) {
    const c = parseOptions(VectorizedLOptTruncatedStepSchema, opts, 'VectorizedLOptTruncatedStep');
    this.numTasks = c.numTasks;
    this.randomInitialIterationOffset = c.randomInitialIterationOffset;
    this.metaLossSplit = c.metaLossSplit;
    this.outerDataSplit = c.outerDataSplit;
    this.metaLossWithAuxKey = c.metaLossWithAuxKey;
    this._taskName = c.taskName;
  }

  taskName(): string {
    return this._taskName ?? this.taskFamily.name;
  }

  cfgName(): string {
    return 'default_cfg';
  }

  outerInit(key: PRNGKey): Theta {
    return this.learnedOpt.init(key);
  }

  private lengthsOf(states: TruncationState[]): tf.Tensor | undefined {
    if (states.every((s) => s.length === undefined)) return undefined;
    return hostTensor(states.map((s) => s.length as number));
  }

  initStepState(theta: Theta, outerState: OuterState | null, key: PRNGKey, opts: StepOptions & { numStepsOverride?: number | null } = {}): TruncatedUnrollState {
    const n = this.numTasks;
    const [key1, key2] = random.split(key);
    const perTask = random.split(key1, n).map((k) => random.split(k, 4));
    const truncStates = perTask.map((ks) => this.truncSched.init(ks[2], outerState));
    const numSteps = opts.numStepsOverride ?? null;
    return tf.tidy(() => {
      const taskParam = this.taskFamily.sampleBatch(perTask.map((ks) => ks[0]));
      const task = this.taskFamily.taskFn(taskParam);
      const [params, modelState] = task.initWithStateBatch(perTask.map((ks) => ks[1]));
      const opt = this.learnedOpt.optFn(theta, true, opts.thetaIsVector ?? false);
      const lengths = truncStates.map((s) => numSteps ?? s.length ?? 0);
      const innerOptState = opt.initBatch(params, { modelState, numSteps: tf.tensor1d(lengths, 'int32'), key: perTask[0][3] });
      const offsets =
        this.randomInitialIterationOffset > 0
          ? random.randintArray(key2, n, 0, this.randomInitialIterationOffset)
          : new Int32Array(n);
      const lengthT = this.lengthsOf(truncStates);
      return {
        innerOptState,
        innerStep: hostTensor(offsets),
        truncationState: lengthT ? { length: lengthT } : {},
        taskParam,
        isDone: hostTensor(new Int32Array(n), 'bool'),
      } as any;
    }) as unknown as TruncatedUnrollState;
  }

  private batchesFrom(split: string, steps: number): PyTree {
    const ds = this.taskFamily.datasets;
    if (!ds) return null;
    return ds.split(split).next([steps, this.numTasks]);
  }

  getBatchIndices(steps = 1): BatchIndices | null {
    const ds = this.taskFamily.datasets;
    if (!ds) return null;
    const splits = ['train', ...(this.metaLossSplit && this.metaLossSplit !== 'same_data' ? [this.metaLossSplit] : [])];
    if (!splits.every((s) => typeof ds.split(s).nextIndices === 'function' && typeof ds.split(s).gather === 'function')) return null;
    const take = (split: string) => ({ split, indices: ds.split(split).nextIndices!(steps * this.numTasks) });
    return { steps, train: take('train'), meta: splits.length > 1 ? take(splits[1]) : null };
  }

  prefetch(): void {
    const ds = this.taskFamily.datasets;
    if (!ds) return;
    for (const split of new Set(['train', ...(this.metaLossSplit && this.metaLossSplit !== 'same_data' ? [this.metaLossSplit] : [])])) ds.split(split).prefetch?.();
  }

  batchFromIndices(desc: BatchIndices, step?: number): PyTree {
    const ds = this.taskFamily.datasets;
    if (!ds) throw new Error(`batchFromIndices: ${this.taskFamily.name} has no datasets`);
    if (step !== undefined && !(Number.isInteger(step) && step >= 0 && step < desc.steps)) throw new RangeError(`batchFromIndices: step ${step} is not in [0, ${desc.steps - 1}]`);
    const shape = step === undefined ? [desc.steps, this.numTasks] : [this.numTasks];
    const take = (indices: Int32Array) => {
      if (step === undefined) return indices;
      const per = indices.length / desc.steps;
      return indices.subarray(step * per, (step + 1) * per);
    };
    const train = ds.split(desc.train.split).gather!(take(desc.train.indices), shape);
    return desc.meta ? { train, meta: ds.split(desc.meta.split).gather!(take(desc.meta.indices), shape) } : train;
  }

  getBatch(steps = 1): PyTree {
    const train = this.batchesFrom('train', steps);
    if (this.metaLossSplit && this.metaLossSplit !== 'same_data') {
      return { train, meta: this.batchesFrom(this.metaLossSplit, steps) };
    }
    return train;
  }

  getOuterBatch(steps = 1): PyTree {
    return this.batchesFrom(this.outerDataSplit, steps);
  }

  /** Splits one call's data into (train, meta) for `rows` tasks (duplicated for stacked antithetic branches). */
  private splitData(data: PyTree, rows: number): [PyTree, PyTree] {
    const times = rows / this.numTasks;
    if (this.metaLossSplit && this.metaLossSplit !== 'same_data') {
      const d = data as { train: PyTree; meta: PyTree };
      return [duplicateRows(d.train, times), duplicateRows(d.meta, times)];
    }
    const train = duplicateRows(data, times);
    return [train, this.metaLossSplit === 'same_data' ? train : null];
  }

  private taskKeys(key: PRNGKey, rows: number): PRNGKey[] {
    if (rows % this.numTasks !== 0) throw new RangeError(`state has ${rows} tasks; expected ${this.numTasks} or a multiple (stacked antithetic)`);
    const keys = random.split(key, this.numTasks);
    // Stacked antithetic branches share per-task randomness.
    return new Array(rows / this.numTasks).fill(keys).flat();
  }

  /**
   * One step's counters, on the host: the per-task keys (a, b) of the step, and the inner step,
   * length and done flag after it (a task that was done restarts at step 0).
   */
  private nextCounters(key1: PRNGKey, rows: number, wasDone: Int32Array, innerStep: Int32Array, oldLengths: Int32Array | null, outerState: OuterState | null) {
    const kab = this.taskKeys(key1, rows).map((k) => random.split(k));
    const newStep = new Int32Array(rows);
    const newLength = new Int32Array(rows);
    const newDone = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      newStep[i] = wasDone[i] ? 0 : innerStep[i] + 1;
      const ts: TruncationState = oldLengths ? { length: oldLengths[i] } : {};
      const [next, done] = this.truncSched.nextState(ts, newStep[i], kab[i][1], outerState);
      newLength[i] = next.length ?? 0;
      newDone[i] = done ? 1 : 0;
    }
    const mask = newStep.map((s) => (s !== 0 ? 1 : 0));
    return { kab, newStep, newLength, newDone, mask };
  }

  /**
   * The new task params and optimizer states of the rows that reset in a step (`wasDone`), from
   * that step's per-task keys; each row's draws come from its own keys, so these are the rows of
   * the reference's init-all-then-`jnp.where`. The optimizer's init key stays row 0's, as when
   * every row was initialised. Call inside a tidy.
   */
  private initRows(opt: Optimizer, kab: PRNGKey[][], wasDone: Int32Array, numSteps: (i: number) => number): { reset: number[]; newParam: PyTree; fresh: OptState } {
    const reset = Array.from(wasDone.keys()).filter((i) => wasDone[i]);
    const resetKeys = reset.map((i) => random.split(kab[i][0], 3));
    const newParam = this.taskFamily.sampleBatch(resetKeys.map((k) => k[0]));
    const newTask = this.taskFamily.taskFn(newParam);
    const [p, s] = newTask.initWithStateBatch(resetKeys.map((k) => k[1]));
    const lengths = tf.tensor1d(reset.map(numSteps), 'int32');
    const optKey = wasDone[0] ? resetKeys[0][2] : random.split(kab[0][0], 3)[2];
    return { reset, newParam, fresh: opt.initBatch(p, { modelState: s, numSteps: lengths, key: optKey }) };
  }

  unrollStep(theta: Theta, state: TruncatedUnrollState, key: PRNGKey, data: PyTree, outerState: OuterState | null, opts: StepOptions = {}): [TruncatedUnrollState, TruncatedUnrollOut] {
    const rows = stateRows(state);
    const [key1, key2] = random.split(key);
    const wasDone = hostValues(state.isDone);
    const anyReset = wasDone.some((d) => d !== 0);
    const innerStep = hostValues(state.innerStep);
    const oldLengths = state.truncationState.length ? hostValues(state.truncationState.length) : null;
    const numSteps = (i: number) => opts.overrideNumSteps ?? (oldLengths ? oldLengths[i] : 0);

    // Counters for the next state, on the host.
    const { kab, newStep, newLength, newDone, mask } = this.nextCounters(key1, rows, wasDone, innerStep, oldLengths, outerState);

    const result = tf.tidy(() => {
      const [trainData, metaData] = this.splitData(data, rows);
      const oldTask = this.taskFamily.taskFn(state.taskParam);
      const opt = this.learnedOpt.optFn(theta, true, opts.thetaIsVector ?? false);
      const trainKeys = kab.map(([ka]) => random.split(ka));
      const inner = state.innerOptState;
      const params = opt.getParams(inner);
      const modelState = opt.getState(inner) ?? null;
      const wantAux = this.metaLossWithAuxKey !== null && metaData === null;
      const out = oldTask.valueAndGradBatch(params, modelState, trainKeys.map((k) => k[0]), trainData, { withAux: wantAux });
      let metaLoss = wantAux ? this.auxValue(out.aux) : out.loss;
      let innerOptState = opt.updateBatch(inner, out.grad, { loss: out.loss, modelState: out.state, key: trainKeys[0][1] });
      let taskParam = state.taskParam;

      if (anyReset) {
        // only the tasks that reset are sampled and initialised (initRows)
        const { newParam, fresh } = this.initRows(opt, kab, wasDone, numSteps);
        innerOptState = treeMapN((a: tf.Tensor, b: tf.Tensor) => replaceRows(wasDone, a, b), fresh, innerOptState);
        taskParam = treeMapN((a: tf.Tensor, b: tf.Tensor) => replaceRows(wasDone, a, b), newParam, state.taskParam);
        metaLoss = selectRows(wasDone, tf.zerosLike(metaLoss), metaLoss);
      }

      if (metaData !== null) {
        // The meta-loss is the loss of the *new* params on the meta batch.
        const metaKeys = this.taskKeys(key2, rows);
        const task = this.taskFamily.taskFn(taskParam);
        const newParams = opt.getParams(innerOptState);
        const newModelState = opt.getState(innerOptState) ?? null;
        const r = task.lossWithStateAndAuxBatch(newParams, newModelState, metaKeys, metaData);
        metaLoss = this.metaLossWithAuxKey !== null ? r.aux[this.metaLossWithAuxKey] : r.loss;
      }
      const loss = oldTask.normalizer(metaLoss).asType('float32');
      const ysTaskParam = treeMap((l: tf.Tensor) => l.clone(), state.taskParam);
      return { innerOptState, taskParam, loss, ysTaskParam } as any;
    }) as { innerOptState: OptState; taskParam: PyTree; loss: tf.Tensor; ysTaskParam: PyTree };

    // Tensors the new state shares with the old one must not be owned twice: clone shared leaves.
    const oldLeaves = new Set(treeLeaves<unknown>(state));
    const own = (t: PyTree) => treeMap((l: unknown) => (l instanceof tf.Tensor && oldLeaves.has(l) ? l.clone() : l), t);

    const next: TruncatedUnrollState = {
      innerOptState: own(result.innerOptState),
      innerStep: hostTensor(newStep),
      truncationState: oldLengths ? { length: hostTensor(newLength) } : {},
      taskParam: own(result.taskParam),
      isDone: hostTensor(newDone, 'bool'),
    };
    const ys: TruncatedUnrollOut = { loss: result.loss, isDone: newDone, mask, iteration: newStep, taskParam: result.ysTaskParam };
    return [next, ys];
  }

  /**
   * Steps `from`, `from + 1`, ... of a K-step unroll in one native kernel (`runNativeBody`), for as
   * long as no task resets: each step is the task's loss and gradient and the learned optimizer's
   * update on host memory (`Task.hostLossAndGrad`, `Optimizer.hostUpdate`), with the counters
   * decided on the host as in `unrollStep` (same keys, same schedule), so nothing goes through
   * tf.js between the inner steps. The values are `unrollStep`'s step by step, up to float
   * rounding. The new rows of the tasks that reset are initialised before the kernel (tf.js, as
   * `unrollStep` does) and copied in at their step; for tasks with task params (which the task's
   * host function reads) a reset ends the run instead, and `unrollStep` does that step.
   *
   * Null where step `from` cannot run here: a task with task params resets at it; the meta-loss
   * is on other data or an aux value; a model state; the task or the optimizer has no host
   * function now (backend, native kernels, shapes); a gradient tape; stacked antithetic rows
   * sharing data.
   */
  hostRun(theta: Theta, state: TruncatedUnrollState, keys: PRNGKey[], data: StepwiseData | null, from: number, outerState: OuterState | null, opts: StepOptions, keepTaskParams: boolean): HostRunOut | null {
    const rows = stateRows(state);
    let wasDone = hostValues(state.isDone);
    if (this.metaLossSplit !== null || this.metaLossWithAuxKey !== null || !nativeUsable() || hostRunsSetting() === 'off') return null;
    const K = keys.length;

    const task = this.taskFamily.taskFn(state.taskParam);
    const opt = this.learnedOpt.optFn(theta, true, opts.thetaIsVector ?? false);
    const inner = state.innerOptState;
    if (opt.getState(inner) !== null && opt.getState(inner) !== undefined) return null;
    const params = opt.getParams(inner);
    const example = data ? data.at(from) : null;
    if (example !== null && example !== undefined && rows !== this.numTasks) {
      for (const l of treeLeaves<tf.Tensor>(example)) l.dispose();
      return null; // stacked antithetic rows share data rows: not here
    }
    const hostTask = task.hostLossAndGrad?.(params, example) ?? null;
    if (example) for (const l of treeLeaves<tf.Tensor>(example)) l.dispose();
    const hostOpt = hostTask ? opt.hostUpdate?.(inner, params) ?? null : null;
    if (!hostTask || !hostOpt) return null;
    // A reset's new rows are copied in (below) where the family has one task whatever its params
    // (a single task as a family) and the host function reads nothing else; otherwise (a
    // quadratic's target) a reset ends the run.
    const resetsInside = hostTask.fixed.length === 0 && this.taskFamily.taskFn(state.taskParam) === task;
    if (!resetsInside && wasDone.some((d) => d !== 0)) return null;

    // The counters of every step, on the host (unrollStep's, step by step), and for a step in
    // which tasks reset, their new rows (unrollStep's initRows, in the carried layout).
    let innerStep = hostValues(state.innerStep);
    let lengths = state.truncationState.length ? hostValues(state.truncationState.length) : null;
    const records: Array<ReturnType<VectorizedLOptTruncatedStep['nextCounters']>> = [];
    const resets: Array<{ s: number; rows: number[]; carried: tf.Tensor[] }> = [];
    // the task params at the start of each step (they change only where tasks reset)
    const taskParams: PyTree[] = [];
    let taskParam = state.taskParam;
    for (let k = from; k < K; k++) {
      const c = this.nextCounters(random.split(keys[k])[0], rows, wasDone, innerStep, lengths, outerState);
      taskParams.push(taskParam);
      if (wasDone.some((d) => d !== 0)) {
        if (!resetsInside) {
          taskParams.pop();
          break;
        }
        const done = wasDone;
        const oldLengths = lengths;
        const numSteps = (i: number) => opts.overrideNumSteps ?? (oldLengths ? oldLengths[i] : 0);
        const before = taskParam;
        const fresh = tf.tidy(() => {
          const r = this.initRows(opt, c.kab, done, numSteps);
          const carriedRows = hostOpt.carriedOf(r.fresh);
          return { carried: carriedRows, taskParam: treeMapN((a: tf.Tensor, b: tf.Tensor) => replaceRows(done, a, b), r.newParam, before) } as any;
        }) as { carried: tf.Tensor[]; taskParam: PyTree };
        resets.push({ s: k - from, rows: Array.from(done.keys()).filter((i) => done[i]), carried: fresh.carried });
        taskParam = fresh.taskParam;
      }
      records.push(c);
      innerStep = c.newStep;
      lengths = lengths ? c.newLength : null;
      wasDone = c.newDone;
    }
    const m = records.length;
    if (m === 0) return null;

    const { carried, fixed, paramIndex } = hostOpt;
    const whole = data ? data.all() : null;
    const dataLeaves = whole === null || whole === undefined ? [] : treeLeaves<tf.Tensor>(whole);
    if (dataLeaves.some((l) => l.shape[0] !== K)) throw new RangeError(`hostRun: data leaves must have a leading axis of ${K} steps`);
    const perStep = dataLeaves.map((l) => l.size / K);
    const freshInputs = resets.flatMap((r) => r.carried);
    const inputs = [...carried, ...fixed, ...hostTask.fixed, ...dataLeaves, ...freshInputs];
    const out = runNativeBody(inputs, (infos, io) => {
      const nc = carried.length;
      const nf = fixed.length;
      const nt = hostTask.fixed.length;
      const nd = dataLeaves.length;
      // every output first: on wasm an allocation may move the heap under earlier views
      const outs = infos.slice(0, nc).map((t) => io.alloc(t.shape, t.dtype as 'float32' | 'int32'));
      const lossOut = io.alloc([m, rows], 'float32');
      const views = infos.map((t) => io.view(t));
      const outViews = outs.map((t) => io.view(t));
      const scratch = outViews.map((v) => (v instanceof Int32Array ? new Int32Array(v.length) : new Float32Array(v.length)));
      const grads = paramIndex.map((i) => new Float32Array(views[i].length));
      const optFixed = views.slice(nc, nc + nf);
      const taskFixed = views.slice(nc + nf, nc + nf + nt);
      const dataViews = views.slice(nc + nf + nt, nc + nf + nt + nd);
      const freshViews = views.slice(nc + nf + nt + nd);
      const rowSize = outViews.map((v) => v.length / rows);
      const loss = io.view(lossOut) as Float32Array;
      let cur: HostArray[] = views.slice(0, nc);
      let nextReset = 0;
      for (let s = 0; s < m; s++) {
        // alternate between the outputs and scratch so that the last step writes the outputs
        const next = (m - 1 - s) % 2 === 0 ? outViews : scratch;
        const k = from + s;
        const stepData = dataViews.map((v, j) => v.subarray(k * perStep[j], (k + 1) * perStep[j]));
        const lossRow = loss.subarray(s * rows, (s + 1) * rows);
        hostTask.run(taskFixed, paramIndex.map((i) => cur[i] as Float32Array), stepData, lossRow, grads);
        hostOpt.run(optFixed, cur, grads, next);
        if (nextReset < resets.length && resets[nextReset].s === s) {
          // the tasks that reset: their new rows replace the update, and their loss is 0
          const fresh = freshViews.slice(nextReset * nc, (nextReset + 1) * nc);
          resets[nextReset].rows.forEach((row, j) => {
            for (let c = 0; c < nc; c++) next[c].set(fresh[c].subarray(j * rowSize[c], (j + 1) * rowSize[c]), row * rowSize[c]);
            lossRow[row] = 0;
          });
          nextReset++;
        }
        hostTask.normalize(lossRow);
        cur = next;
      }
      return [...outs, lossOut];
    });
    freshInputs.forEach((t) => t.dispose());
    const owned = new Set(treeLeaves<tf.Tensor>(state.taskParam));

    const last = records[m - 1];
    const clone = (t: PyTree) => treeMap((l: tf.Tensor) => l.clone(), t);
    const next: TruncatedUnrollState = {
      innerOptState: hostOpt.rebuild(out.slice(0, carried.length)),
      innerStep: hostTensor(last.newStep),
      truncationState: state.truncationState.length ? { length: hostTensor(last.newLength) } : {},
      taskParam: taskParam === state.taskParam ? clone(taskParam) : taskParam,
      isDone: hostTensor(last.newDone, 'bool'),
    };
    const ysTaskParam = keepTaskParams ? taskParams.map(clone) : [];
    // the task params of steps between resets were made here and are not the new state's
    for (const tp of new Set(taskParams)) if (tp !== state.taskParam && tp !== taskParam) for (const l of treeLeaves<tf.Tensor>(tp)) if (!owned.has(l)) l.dispose();
    return {
      state: next,
      steps: m,
      loss: out[carried.length],
      isDone: records.map((r) => r.newDone),
      mask: records.map((r) => r.mask),
      iteration: records.map((r) => r.newStep),
      taskParam: ysTaskParam,
    };
  }

  private auxValue(aux: Record<string, tf.Tensor> | undefined): tf.Tensor {
    const k = this.metaLossWithAuxKey as string;
    if (!aux || !(k in aux)) throw new Error(`metaLossWithAuxKey '${k}' is not an aux value of task ${this.taskName()} (aux: ${Object.keys(aux ?? {}).join(', ') || 'none'})`);
    return aux[k];
  }

  metaLossBatch(theta: Theta, state: TruncatedUnrollState, key: PRNGKey, data: PyTree, _outerState: OuterState | null, opts: StepOptions = {}): tf.Tensor {
    const rows = stateRows(state);
    return tf.tidy(() => {
      const opt = this.learnedOpt.optFn(theta, true, opts.thetaIsVector ?? false);
      const task = this.taskFamily.taskFn(state.taskParam);
      const keys = this.taskKeys(key, rows);
      const d = duplicateRows(data, rows / this.numTasks);
      const r = task.lossWithStateAndAuxBatch(opt.getParams(state.innerOptState), opt.getState(state.innerOptState) ?? null, keys, d);
      if (this.metaLossWithAuxKey !== null) return r.aux[this.metaLossWithAuxKey];
      return task.normalizer(r.loss);
    });
  }
}


/**
 * One fixed task trained for exactly `unrollLength` steps, then reset (reference
 * `outer_trainers/lopt_truncated_step.py`, `SimpleLOptTruncatedStep.unroll_step`): a step trains
 * while the inner step is below `unrollLength`; otherwise it is a reset step that reports
 * `isDone` with mask 0 and loss 0. With `numTasks > 1` it is the reference's SimpleVecLOptTruncatedStep.
 */
export class SimpleLOptTruncatedStep extends VectorizedLOptTruncatedStep {
  readonly unrollLength: number;

  constructor(task: Task, learnedOpt: LearnedOptimizer, opts: { unrollLength?: number; numTasks?: number } = {}) {
    super(singleTaskToFamily(task), learnedOpt, new NeverEndingTruncationSchedule(), { numTasks: opts.numTasks ?? 1 });
    this.unrollLength = opts.unrollLength ?? 5;
  }

  /** Its reset rule is its own `unrollStep`'s: every step goes through it. */
  override hostRun(): HostRunOut | null {
    return null;
  }

  override unrollStep(theta: Theta, state: TruncatedUnrollState, key: PRNGKey, data: PyTree, outerState: OuterState | null, opts: StepOptions = {}): [TruncatedUnrollState, TruncatedUnrollOut] {
    const resetRows = hostValues(state.innerStep).map((s) => (s >= this.unrollLength ? 1 : 0));
    const marked = { ...state, isDone: hostTensor(resetRows, 'bool') };
    const [next, ys] = super.unrollStep(theta, marked, key, data, outerState, opts);
    marked.isDone.dispose();
    next.isDone.dispose();
    next.isDone = hostTensor(new Int32Array(resetRows.length), 'bool');
    return [next, { ...ys, isDone: resetRows }];
  }
}

registerPlugin({
  kind: 'truncated_step',
  name: 'VectorizedLOptTruncatedStep',
  description: 'N stacked tasks of a family trained by a learned optimizer, reset when a truncation ends',
  // numTasks comes from the experiment's task entry, with the other collaborators
  schema: VectorizedLOptTruncatedStepSchema.omit({ numTasks: true }),
  create: (c, deps) => new VectorizedLOptTruncatedStep(deps.taskFamily, deps.learnedOptimizer, deps.truncationSchedule, { ...c, numTasks: deps.numTasks }),
  cls: VectorizedLOptTruncatedStep,
});
