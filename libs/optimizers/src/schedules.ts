/**
 * Learning-rate schedules (reference `optimizers/learning_rate_schedules.py`): each is a
 * `ScalarSchedule(step, maxSteps) -> value` computed with tensor ops, so `step` may be `[]` or
 * `[N]` (one count per task). Usable wherever a learning rate goes: `new Adam(cosineSchedule(...))`.
 * `maxSteps` comes from the `numSteps` given to the optimizer's `init`.
 */
import * as tf from '@tensorflow/tfjs';
import { toFloatTensor } from './common';

/** A learning-rate schedule: a value from the step (and the run's length) (learned_optimization/optimizers/base.py schedules, optax's schedules). */
export interface ScalarSchedule {
  (step: tf.Tensor, maxSteps: tf.Tensor): tf.Tensor;
  /** Set when the schedule reads `maxSteps` (init then requires `numSteps`). */
  needsMaxSteps?: boolean;
  /** For optimizer names. */
  label?: string;
}

function mark(fn: (step: tf.Tensor, maxSteps: tf.Tensor) => tf.Tensor, label: string, needsMaxSteps: boolean): ScalarSchedule {
  const s = fn as ScalarSchedule;
  s.needsMaxSteps = needsMaxSteps;
  s.label = label;
  return s;
}

/** Options of the cosine-decay schedule (optax `cosine_decay_schedule`'s `alpha` as `minLearningRateMult`). */
export interface CosineScheduleOptions {
  minLearningRateMult?: number;
  constantFraction?: number;
  warmupFraction?: number;
}

/**
 * CosineLearningRateSchedule: linear warm-up from 0 over `max(warmupFraction, constantFraction)·maxSteps`
 * (when warmupFraction > 0), constant until `constantFraction·maxSteps`, then cosine decay to
 * `minLearningRateMult·lr` at `maxSteps`.
 */
export function cosineSchedule(learningRate: number, opts: CosineScheduleOptions = {}): ScalarSchedule {
  const { minLearningRateMult = 0, constantFraction = 0.5, warmupFraction = 0.01 } = opts;
  return mark(
    (step, maxSteps) => {
      const T = toFloatTensor(maxSteps);
      const gs = tf.minimum(toFloatTensor(step), T);
      const constantSteps = tf.mul(T, constantFraction);
      const x = tf.maximum(gs, constantSteps);
      const minLr = minLearningRateMult * learningRate;
      let isWarmup: tf.Tensor | number = 0;
      let warmupLr: tf.Tensor | number = learningRate;
      if (warmupFraction > 0) {
        const warmupSteps = tf.mul(T, Math.max(warmupFraction, constantFraction));
        isWarmup = tf.cast(tf.greater(warmupSteps, gs), 'float32');
        warmupLr = tf.mul(tf.div(gs, warmupSteps), learningRate);
      }
      const s = tf.sub(x, constantSteps);
      const cos = tf.cos(tf.div(tf.mul(s, Math.PI), tf.sub(T, constantSteps)));
      const decay = tf.add(tf.mul(learningRate - minLr, tf.add(tf.div(cos, 2), 0.5)), minLr);
      return tf.add(tf.mul(decay, tf.sub(1, isWarmup)), tf.mul(isWarmup, warmupLr));
    },
    `cosine${learningRate}`,
    true,
  );
}

/** Linear warm-up from `initValue` to `peakValue` over `warmupSteps`, then constant. */
export function linearWarmupSchedule(peakValue: number, warmupSteps: number, initValue = 0): ScalarSchedule {
  return mark(
    (step) => {
      const frac = tf.clipByValue(tf.div(toFloatTensor(step), Math.max(warmupSteps, 1)), 0, 1);
      return tf.add(initValue, tf.mul(frac, peakValue - initValue));
    },
    `warmup${peakValue}`,
    false,
  );
}

/** LinearRampupSqrtDecay: `peak · min(step/warmup, sqrt(warmup/step))`, step clamped to ≥ 1. */
export function linearRampupSqrtDecaySchedule(peakLr = 1e-3, warmupSteps = 1000): ScalarSchedule {
  return mark(
    (step) => {
      const s = tf.maximum(toFloatTensor(step), 1);
      return tf.mul(peakLr, tf.minimum(tf.div(s, warmupSteps), tf.sqrt(tf.div(warmupSteps, s))));
    },
    `rampsqrt${peakLr}`,
    false,
  );
}

/** Piecewise linear interpolation through (times[i], vals[i]), constant outside the range. */
export function piecewiseLinearSchedule(times: number[], vals: number[]): ScalarSchedule {
  if (times.length !== vals.length || times.length === 0) {
    throw new Error(`piecewiseLinearSchedule: times (${times.length}) and vals (${vals.length}) must be equal, non-empty`);
  }
  return mark(
    (step) => {
      const x = toFloatTensor(step);
      let out: tf.Tensor = tf.fill(x.shape, vals[0]);
      for (let i = 0; i + 1 < times.length; i++) {
        const [x1, x2, y1, y2] = [times[i], times[i + 1], vals[i], vals[i + 1]];
        const v = tf.add(tf.mul(tf.sub(x, x1), (y2 - y1) / (x2 - x1)), y1);
        out = tf.where(tf.logicalAnd(tf.greater(x, x1), tf.lessEqual(x, x2)), v, out);
      }
      return tf.where(tf.greater(x, times[times.length - 1]), tf.fill(x.shape, vals[vals.length - 1]), out);
    },
    'piecewise',
    false,
  );
}

/** Options of the exponential-decay schedule (optax `exponential_decay`). */
export interface ExponentialDecayOptions {
  staircase?: boolean;
  endValue?: number;
}

/** `init · rate^(step / transitionSteps)` (floored exponent with `staircase`), optionally bounded by `endValue`. */
export function exponentialDecaySchedule(
  initValue: number,
  transitionSteps: number,
  decayRate: number,
  opts: ExponentialDecayOptions = {},
): ScalarSchedule {
  return mark(
    (step) => {
      let e = tf.div(toFloatTensor(step), transitionSteps);
      if (opts.staircase) e = tf.floor(e);
      let v = tf.mul(initValue, tf.pow(tf.scalar(decayRate), e));
      if (opts.endValue !== undefined) v = decayRate < 1 ? tf.maximum(v, opts.endValue) : tf.minimum(v, opts.endValue);
      return v;
    },
    `expdecay${initValue}`,
    false,
  );
}
