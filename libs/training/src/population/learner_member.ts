/**
 * A population member that is a full distributed learner (`lopt learner <experiment> --population
 * HOST:PORT --member-id i`): the reference's `outer_train.train_learner` with a population, whose
 * learner serves θ to workers of its own and, between segments, asks the population controller
 * what to run (`maybe_get_worker_data`) and reports checkpoints (`set_eval`).
 *
 * Before each segment of `population.evalEvery` outer steps the member polls the controller; a new
 * generation brings hyper-parameters (the learner's theta optimizer is rebuilt, as the reference
 * re-parses its gin `outer_cfg`) and maybe a checkpoint to restart from. The learner then applies
 * its workers' gradients for `evalEvery` steps, writes a checkpoint and reports it with the value
 * the config names: the mean meta-training loss of the segment (`trainLoss`), or the result of the
 * member's continuous-evaluation chief for that checkpoint (`eval`; the reference's chief reports
 * `metrics[log_to_population_tag]` in `run_eval_chief.write_result_to_population`).
 *
 * A member that is killed and started again (by hand, or by `lopt population --serve
 * --spawn-members`) polls with no generation: the controller answers with its generation and last
 * reported checkpoint, so only the steps since that report are redone.
 */
import type { Registry } from '@lopt/core';
import type { SavedCheckpoint } from '../checkpoints';
import type { DistributedLearner } from '../distributed/learner';
import { MetaTrainer } from '../meta_trainer';
import type { MetaTrainingConfig } from '../experiment_config';
import type { MetaParams } from './hparams';
import type { PopulationService } from './population';
import { applyMetaParams, type PopulationEvent, type PopulationReport, type ValidatedPopulation } from './run';

/** What `runLearnerMember` needs. */
export interface LearnerMemberOptions {
  /** An initialized learner whose `logdir` is `<population logdir>/members/<member>`. */
  learner: DistributedLearner;
  /** The experiment's config (the learner's), population section included. */
  config: MetaTrainingConfig;
  population: ValidatedPopulation;
  controller: PopulationService;
  member: number;
  registry: Registry;
  /**
   * With `population.value: eval`: resolves to the value of a checkpoint the member just wrote
   * (its eval chief's result, `population.evalTag`). Required then.
   */
  evalValue?: (saved: SavedCheckpoint) => Promise<number>;
  onEvent?: (event: PopulationEvent) => void;
}

/** How a member's run ended. */
export interface LearnerMemberResult {
  step: number;
  generationId: string | null;
  metaParams: MetaParams | null;
  lastReport: PopulationReport | null;
  /** Stopped by `learner.requestStop()` before the end. */
  interrupted: boolean;
}

/** Runs member `o.member` of a population until its step count (or a stop request). */
export async function runLearnerMember(o: LearnerMemberOptions): Promise<LearnerMemberResult> {
  const { learner, controller, member } = o;
  const pop = o.population.population;
  if (pop.value === 'eval' && !o.evalValue) throw new Error("population.value 'eval': the member needs its eval chief (lopt learner --eval)");
  const emit = (e: PopulationEvent) => o.onEvent?.(e);
  const total = learner.steps;
  let gen: string | null = null;
  let meta: MetaParams | null = null;
  let params: string | null = null;
  let lastReport: PopulationReport | null = null;
  const owned: MetaTrainer[] = [learner.trainer];
  let interrupted = false;
  try {
    for (;;) {
      if (learner.stopping) {
        interrupted = learner.step < total;
        break;
      }
      const next = await controller.maybeGetWorkerData(member, gen, gen === null ? null : learner.step, params, meta);
      if (next) {
        const m = next.metaParams as MetaParams;
        let trainer: MetaTrainer | undefined;
        if (JSON.stringify(m) !== JSON.stringify(meta)) {
          trainer = new MetaTrainer(applyMetaParams(o.config, m, o.registry), o.registry);
          owned.push(trainer);
        }
        const from = (next.params ?? null) as string | null;
        await learner.loadGeneration({ trainer, checkpoint: from });
        gen = next.generationId;
        meta = m;
        params = from;
        emit({ type: 'switch', member, generationId: gen, metaParams: m, step: learner.step, from });
      }
      if (learner.step >= total) break;
      const before = learner.losses.length;
      const target = Math.min(total, learner.step + pop.evalEvery);
      await learner.run({ untilStep: target, segment: true });
      if (learner.step < target) {
        // stopped inside the segment: nothing is reported; a restart redoes it from the last report
        interrupted = true;
        break;
      }
      const saved = await learner.checkpointNow({ generationId: gen, metaParams: meta, populationMember: member });
      const losses = learner.losses.slice(before);
      const trainLoss = losses.reduce((a, b) => a + b, 0) / losses.length;
      const value = pop.value === 'eval' ? await o.evalValue!(saved) : trainLoss;
      params = saved.checkpointPath;
      lastReport = { step: learner.step, generationId: gen!, metaParams: meta!, value, checkpoint: saved.checkpointPath };
      learner.writeScalars({ 'population/value': value, 'population/train_loss': trainLoss, ...Object.fromEntries(Object.entries(meta!).map(([k, x]) => [`population/${k}`, x])) }, learner.step);
      await controller.setEval(member, gen!, learner.step, saved.checkpointPath, value);
      emit({ type: 'report', member, generationId: gen!, step: learner.step, value, metaParams: meta! });
    }
  } finally {
    if (!interrupted) learner.finish();
    // the learner holds the newest trainer; the ones it replaced are done
    for (const t of owned) if (t !== learner.trainer) await t.dispose(null);
  }
  return { step: learner.step, generationId: gen, metaParams: meta, lastReport, interrupted };
}

