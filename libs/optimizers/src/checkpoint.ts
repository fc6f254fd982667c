/**
 * Loading a learned optimizer's θ from the reference's `params` files, as
 * `learned_optimizers/opt_from_checkpoint.py` (`opt_from_checkpoint`) and
 * `research/general_lopt/pretrained_optimizers.py` do: build the learned optimizer, take
 * `lopt.init(PRNGKey(0))` as the template, and restore the flax msgpack file
 * (`checkpoints.load_state` of a `gradient_learner.ParameterCheckpoint(θ, gen_id, step)`) into it.
 * A file whose θ does not have the template's leaves and shapes is refused, naming the leaf and the
 * expected and found shapes.
 */
import * as tf from '@tensorflow/tfjs';
import { checkThetaStructure, importFlaxParams, random, treeLeaves } from '@lopt/core';
import type { LearnedOptimizer, Optimizer, Theta } from './base';

/** A learned optimizer and its θ read from a checkpoint or params file. */
export interface LoadedLearnedOptimizer {
  /** θ, with the structure of `lopt.init(key)`. */
  theta: Theta;
  /** `lopt.optFn(theta)`. */
  opt: Optimizer;
  /** The checkpoint's `step` and `gen_id` (null for a bare params state dict). */
  step: number | null;
  genId: string | null;
}

/**
 * Reads a flax `params` file (bytes) into θ for `lopt`; throws a FlaxFormatError naming every
 * missing, unexpected or mis-shaped leaf (`'rnn_params/rnn/linear/w' has shape [a,b], expected
 * [c,d]`) when the file was written for another learned optimizer or configuration.
 */
export function loadLearnedOptimizerCheckpoint(lopt: LearnedOptimizer, bytes: Uint8Array, opts: { source?: string } = {}): LoadedLearnedOptimizer {
  const source = opts.source ?? '<bytes>';
  const loaded = importFlaxParams(bytes, source);
  const template = lopt.init(random.PRNGKey(0));
  try {
    checkThetaStructure(loaded.theta, template, `${source}: θ of ${lopt.constructor.name}`);
  } catch (e) {
    tf.dispose(treeLeaves<tf.Tensor>(loaded.theta));
    throw e;
  } finally {
    tf.dispose(treeLeaves<tf.Tensor>(template));
  }
  return { theta: loaded.theta, opt: lopt.optFn(loaded.theta), step: loaded.step, genId: loaded.genId };
}
