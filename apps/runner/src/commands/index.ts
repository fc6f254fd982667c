/**
 * The `lopt` subcommands, one file per command. Each exports `register(program, ctx)`.
 *
 * Extension points (to be added as their own files here and listed in COMMANDS):
 * - `run.ts`     `lopt run <experiment> [--config FILE] [--set k=v ...] [--logdir DIR]`
 *                single-machine meta-training with TensorBoard, checkpoints, loss plots
 * - `eval.ts`    `lopt eval --params FILE [--task T] [--baselines adam:1e-3]`: train a task with a
 *                saved learned optimizer and baselines; table, plot, TensorBoard
 * - `learner.ts` `lopt learner`: the learner process of distributed training (reference
 *                `outer_train.py`, `train_learner`)
 * - `worker.ts`  `lopt worker`: a worker process (reference `outer_train.py`, `train_worker`)
 * - `build_native.ts` `lopt build-native`: compile the optional native kernels of installed packages
 * - `eval_worker.ts` `lopt eval-worker`: an eval worker of continuous evaluation (reference
 *                `continuous_eval/run_eval_worker.py`)
 * - `population.ts` `lopt population <experiment> --members K --mutator NAME`: population-based
 *                training (reference `population/`, `run_population_controller.py`)
 * - `tokenize.ts` `lopt tokenize <corpus> --model FILE`: a corpus's 32k token-id files, written
 *                with a sentencepiece model
 * - `data.ts`    `lopt data lm1b` / `lopt data wikipedia_en --from EXPORT`: prepares a large
 *                language corpus (download, TFDS order, optional 32k ids)
 * - `imagenet_npz.ts` `lopt imagenet-npz --size S --train ... --val ...`: image-net.org's
 *                downsampled ImageNet npz files as the imagenet2012_<S>/ shards the datasets read
 */
import { Command } from 'commander';
import { CliContext } from './context';
import * as list from './list';
import * as run from './run';
import * as learner from './learner';
import * as worker from './worker';
import * as evalCmd from './eval';
import * as buildNative from './build_native';
import * as evalWorker from './eval_worker';
import * as population from './population';
import * as tokenize from './tokenize';
import * as data from './data';
import * as imagenetNpz from './imagenet_npz';

/** A `lopt` subcommand: `register` adds it to the commander program. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

/** Every built-in `lopt` subcommand, in help order. */
export const COMMANDS: CommandModule[] = [list, run, learner, worker, evalCmd, buildNative, evalWorker, population, tokenize, data, imagenetNpz];
