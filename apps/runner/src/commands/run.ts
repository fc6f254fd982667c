/**
 * `lopt run <experiment>`: single-machine meta-training with TensorBoard logs, checkpoints
 * (`--resume`), a loss plot and a progress bar. See run_experiment.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import { CliContext } from './context';

// The run machinery (and through it every lib) is required when the command runs, so the CLI still
// starts when a lib fails to load; types only here.
type RunModule = typeof import('../run_experiment');
const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'];

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface RunCliOptions {
  steps?: string;
  seed?: string;
  logdir?: string;
  backend?: string;
  set: string[];
  config?: string;
  resume?: boolean;
  threads?: string;
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
    .addHelpText(
      'after',
      '\nGlobal options such as --plugin PATH_OR_PACKAGE may also follow the command.\n' +
        'Example: lopt run quadratic-pes --steps 20 --set gradientEstimator.config.truncLength=5 --logdir runs/q',
    )
    .action(async (experiment: string, o: RunCliOptions) => {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const { defaultLogdir, resolveRunConfig, resolveThreads, runExperiment } = require('../run_experiment') as RunModule;
      if (o.resume && !o.logdir) throw new Error('--resume needs --logdir: the run directory to continue');
      // Validate everything before anything is written.
      const config = resolveRunConfig(ctx.registry, experiment, { configFile: o.config, set: o.set, steps: o.steps, seed: o.seed });
      const logdir = o.logdir ?? defaultLogdir(experiment);
      const result = await runExperiment({
        experiment,
        config,
        registry: ctx.registry,
        logdir,
        resume: o.resume,
        backend: o.backend,
        stdout: ctx.stdout,
        stderr: ctx.stderr,
        handleSignals: true,
        threads: resolveThreads(o.threads),
        plugins: ctx.plugins,
      });
      if (result.interrupted) throw new CommanderError(130, 'lopt.interrupted', `interrupted by ${result.signal}`);
    });
}
