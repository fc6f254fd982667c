/**
 * `lopt eval --params FILE [--task NAME] [--steps N] [--baselines adam:1e-3,sgd:0.1] [--seeds K]
 *            [--out DIR] [--backend NAME] [--lopt NAME]`
 * Trains a task with a saved learned optimizer and with baselines; writes eval.md, eval.json,
 * eval.png / eval.svg and TensorBoard events (tb/<optimizer>/) into --out. See eval/evaluate.ts.
 */
import * as path from 'path';
import { Command } from 'commander';
import { initBackend } from '@lopt/core';
import { CliContext } from './context';
import { MAX_SEED, intParser } from './args';


function jsonArg(name: string) {
  return (v: string): Record<string, unknown> => {
    try {
      const x = JSON.parse(v);
      if (x && typeof x === 'object' && !Array.isArray(x)) return x;
    } catch {
      /* fall through */
    }
    throw new Error(`${name} must be a JSON object, got '${v}'`);
  };
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('eval')
    .description('train a task with a saved learned optimizer and with baselines; write a comparison table, plot and TensorBoard events')
    .requiredOption('--params <path>', "θ: a params_<n> checkpoint dir, a run's log dir, a lopt tree file, or a flax msgpack params file (detected by content)")
    .option('--task <name>', 'any registered task or task family (a family is sampled once per seed)', 'ImageMLP_FashionMnist8_Relu32')
    .option('--task-config <json>', "the task's config as JSON", jsonArg('--task-config'))
    .option('--steps <n>', 'inner training steps', intParser('--steps', 1), 500)
    .option('--baselines <list>', "comma-separated NAME[:LR] of registered optimizers (adam, sgd, sgdm, rmsprop, adamw), or 'none'", 'adam:1e-3')
    .option('--seeds <k>', 'number of seeds', intParser('--seeds', 1), 3)
    .option('--seed <s>', 'first seed (seed k uses PRNGKey(s + k))', intParser('--seed', 0, MAX_SEED), 0)
    .option('--out <dir>', 'output directory (default: eval-<task>)')
    .option('--backend <name>', 'tfjs backend: auto, tensorflow, wasm, cpu (default: LOPT_BACKEND or auto)')
    .option('--lopt <name>', "learned optimizer (default: the run's config.json, else MLPLOpt); VeLO: the prefab on a HyperV2 θ (the VeLO checkpoint), numTrainingSteps = --steps, --lopt-config {weightDecay, maxTrainingSteps, hyperV2}")
    .option('--lopt-config <json>', "the learned optimizer's config as JSON", jsonArg('--lopt-config'))
    .option('--eval-every <n>', 'evaluate every n steps (default min(10, steps/10))', intParser('--eval-every', 1))
    .option('--eval-batches <n>', 'batches per evaluation', intParser('--eval-batches', 1), 5)
    .option('--last-eval-batches <n>', 'batches for the final evaluation', intParser('--last-eval-batches', 1), 20)
    .action(async (opts) => {
      // loaded when the command runs, so `lopt list` does not pull in every lib
      const { markdownTable, parseBaselines, runEval } = await import('../eval/evaluate');
      await initBackend(opts.backend);
      const baselines = parseBaselines(opts.baselines, ctx.registry);
      const out = opts.out ?? `eval-${opts.task}`;
      const report = await runEval({
        paramsPath: opts.params,
        task: opts.task,
        taskConfig: opts.taskConfig,
        steps: opts.steps,
        baselines,
        seeds: opts.seeds,
        seed: opts.seed,
        out,
        lopt: opts.lopt,
        loptConfig: opts.loptConfig,
        evalEvery: opts.evalEvery,
        evalBatches: opts.evalBatches,
        lastEvalBatches: opts.lastEvalBatches,
        registry: ctx.registry,
        log: (line) => ctx.stderr.write(`${line}\n`),
      });
      ctx.stdout.write(`${markdownTable(report.results)}\n\nwrote ${Object.values(report.files).map((f) => path.relative(process.cwd(), f) || f).join(', ')}\n`);
    });
}
