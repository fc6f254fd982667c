/**
 * `lopt run <experiment>`: single-machine meta-training with TensorBoard logs, checkpoints
 * (`--resume`), a loss plot and a progress bar. See run_experiment.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import * as path from 'path';
import type { ContinuousEval, TrainResult } from '@lopt/training';
import { createProgress, formatDuration, type ProgressReporter } from '../progress';
import { CliContext } from './context';
import { BACKEND_CHOICES, collect } from './args';

// The training library (and through it every lib) is required when the command runs, so the CLI
// still starts when a lib fails to load; types only here.
type TrainingModule = typeof import('@lopt/training');


interface RunCliOptions {
  steps?: string;
  seed?: string;
  logdir?: string;
  backend?: string;
  set: string[];
  config?: string;
  resume?: boolean;
  threads?: string;
  eval?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('meta-train an experiment on this machine (TensorBoard logs, checkpoints, loss plot)')
    .argument('<experiment>', "a registered experiment (see 'lopt list experiments')")
    .option('--steps <n>', 'outer steps (shorthand for --set steps=N)')
    .option('--seed <s>', 'random seed (shorthand for --set seed=S)')
    .option('--logdir <dir>', 'log directory (default runs/<experiment>-<timestamp>)')
    .addOption(new Option('--backend <name>', 'tf.js backend (default: $LOPT_BACKEND, else auto)').choices(BACKEND_CHOICES))
    .option('--set <path=value>', 'override a config field, e.g. --set tasks.0.numTasks=8; repeatable', collect, [])
    .option('--config <file>', 'JSON or YAML file of config fields (applied before --set)')
    .option('--resume', 'continue from the newest checkpoint in --logdir (same config; steps may grow)')
    .addOption(
      new Option('--threads <n>', "1: all on this thread; 2: each PES estimator's antithetic branches in two worker threads (same results); auto: 2 when the machine has 2+ CPUs")
        .choices(['1', '2', 'auto'])
        .default('1'),
    )
    .option('--eval', "evaluate the run's checkpoints while it trains (the config's eval: section; see docs/continuous-eval.md)")
    .addHelpText(
      'after',
      '\nGlobal options such as --plugin PATH_OR_PACKAGE may also follow the command.\n' +
        'Example: lopt run quadratic-pes --steps 20 --set gradientEstimator.config.truncLength=5 --logdir runs/q',
    )
    .action(async (experiment: string, o: RunCliOptions) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- @lopt/training loads only when a run starts
      const { ContinuousEval, defaultLogdir, resolveRunConfig, resolveThreads, train } = require('@lopt/training') as TrainingModule;
      if (o.resume && !o.logdir) throw new Error('--resume needs --logdir: the run directory to continue');
      // Validate everything before anything is written.
      const config = resolveRunConfig(ctx.registry, experiment, { configFile: o.config, set: o.set, steps: o.steps, seed: o.seed });
      const logdir = o.logdir ?? defaultLogdir(experiment);
      const threads = resolveThreads(o.threads);
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the libs (and their native kernels) load only when a run starts
      const { nativeKernelsStatus } = require('../libs') as typeof import('../libs');
      if (!process.env.LOPT_QUIET) ctx.stderr.write(`[lopt] ${nativeKernelsStatus()}\n`);

      // Ctrl-C / SIGTERM: finish the current step, checkpoint, close the event file, exit 130.
      const stop = new AbortController();
      let stopSignal: string | undefined;
      let progress: ProgressReporter | null = null;
      const log = (msg: string) => (progress ? progress.log(msg) : ctx.stderr.write(msg + '\n'));
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopSignal) {
          ctx.stderr.write(`\nlopt: second ${sig}, exiting without a final checkpoint\n`);
          process.exit(130);
        }
        stopSignal = sig;
        log(`lopt: ${sig} received, stopping after this step (Ctrl-C again to quit at once)`);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      let result: TrainResult;
      // --eval: the eval chief and its worker threads start once the run has its log directory
      const ceval: { started: Promise<ContinuousEval> | null } = { started: null };
      const startEval = () => {
        if (!ceval.started) {
          ceval.started = ContinuousEval.start({ logdir, config, backend: o.backend, plugins: ctx.plugins, log: evalLog });
          ceval.started.catch(() => undefined); // its error surfaces when the run awaits it at the end
        }
      };
      const evalLog = (msg: string) => log(`lopt: ${msg}`);
      try {
        result = await train(config, {
          experiment,
          registry: ctx.registry,
          logdir,
          resume: o.resume,
          backend: o.backend,
          threads,
          plugins: ctx.plugins,
          signal: stop.signal,
          onEvent: (e) => {
            if (e.type === 'start' && o.eval) {
              startEval();
            }
            // told of each checkpoint, the chief takes every one (none passed over while it was busy)
            if (e.type === 'checkpoint') ceval.started?.then((c) => c.onCheckpoint({ all: true })).catch(() => undefined);
            if (e.type === 'start') {
              ctx.stderr.write(
                `lopt run ${experiment}: ${e.startStep ? `resuming at step ${e.startStep} of ${e.total}` : `${e.total} steps`}, ` +
                  `backend ${e.backend}${e.threads > 1 ? `, ${e.threads} threads` : ''}, logdir ${logdir}\n`,
              );
              progress = createProgress({
                total: e.total,
                startStep: e.startStep,
                label: experiment,
                stream: ctx.stderr,
                logEverySteps: Math.max(1, Math.round(e.total / 50)),
                logEverySeconds: 10,
              });
            } else if (e.type === 'step') {
              // the loss the estimator used, and beside it the real one when that was not finite
              progress?.update(e.step, Number.isFinite(e.rawLoss) ? { loss: e.loss } : { loss: e.loss, raw: e.rawLoss });
            }
            else if (e.type === 'log') log(`lopt: ${e.message}`);
          },
        });
        // also when train() had nothing to do (a finished run resumed) and never started: the
        // evaluations a killed run left in the chief's state file are still owed
        if (o.eval && !stopSignal) startEval();
        if (ceval.started && !stopSignal) {
          log('lopt: training done; waiting for the evaluation of its checkpoints');
          await (await ceval.started).finish(stop.signal);
        }
      } finally {
        if (ceval.started) await (await ceval.started.catch(() => null))?.close();
        (progress as ProgressReporter | null)?.stop();
        progress = null;
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      ctx.stdout.write(summary(experiment, result, stopSignal) + '\n');
      if (stopSignal) throw new CommanderError(130, 'lopt.interrupted', `interrupted by ${stopSignal}`);
    });
}

/** The lines printed when a run ends: where its logs, checkpoints and plot are. */
function summary(experiment: string, r: TrainResult, stopSignal: string | undefined): string {
  const rel = (p: string) => {
    const q = path.relative(process.cwd(), p);
    return q && !q.startsWith('..') ? q : p;
  };
  const took = formatDuration(r.seconds);
  return [
    stopSignal
      ? `lopt run ${experiment}: stopped by ${stopSignal} after step ${r.step} of ${r.total} (${took}); resume with --resume --logdir ${rel(r.logdir)}`
      : `lopt run ${experiment}: done, ${r.step - r.startStep} steps in ${took} (step ${r.step} of ${r.total})`,
    `  final loss:  ${r.finalLoss === null ? '-' : r.finalLoss.toPrecision(6)}` +
      (r.finalRawLoss !== null && !Number.isFinite(r.finalRawLoss) ? ` (the real mean loss is ${r.finalRawLoss}; ${r.finalLoss} is the clipped value PES used)` : '') +
      (r.firstNonFiniteStep !== null ? `\n  warning:     not finite from step ${r.firstNonFiniteStep} on (loss or meta-gradient)` : ''),
    `  logs:        ${rel(r.logdir)}   (tensorboard --logdir ${rel(r.logdir)})`,
    `  config:      ${rel(path.join(r.logdir, 'config.json'))}`,
    `  checkpoints: ${rel(path.join(r.logdir, 'checkpoints'))}${r.lastCheckpoint ? `   (latest ${path.basename(r.lastCheckpoint)})` : ''}`,
    `  plot:        ${rel(path.join(r.logdir, 'loss.png'))}`,
  ].join('\n');
}
