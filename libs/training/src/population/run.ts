/**
 * Population-based meta-training in one process: `trainPopulation(config, { logdir })` runs the
 * config's `population.members` learners (each a `MetaTrainer`) against a `PopulationController`,
 * as the reference's learners do in `outer_train.train_learner` with a population: before every
 * segment of `evalEvery` outer steps a member polls `maybeGetWorkerData`; a new generation brings
 * new hyper-parameters (the member rebuilds its theta optimizer: the reference re-parses its gin
 * `outer_cfg` and rebuilds the outer learner) and maybe another member's checkpoint to restart
 * from (exploit). After the segment it checkpoints and reports `setEval(checkpoint path, value)`.
 *
 * ```
 * <logdir>/config.json                         the validated config (population section included)
 * <logdir>/population.state                    the controller's state (resume: --resume)
 * <logdir>/members/<i>/checkpoints/...         member i's checkpoints (what generations hand over)
 * <logdir>/members/<i>/events.out.tfevents.*   outer/loss, population/value and the tuned values
 * ```
 * Every member draws the keys of the config's seed (the same tasks at the same step): members
 * differ by their hyper-parameters and history only. A kill loses at most the steps since each
 * member's last report: on `resume`, members restart from what the controller holds for them.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, readCheckpointDir, registry as processRegistry, treeDispose, type PyTree, type Registry } from '@lopt/core';
import { ConfigError } from '../config';
import { CheckpointManager } from '../checkpoints';
import { MetaTrainer, type MetaTrainerState } from '../meta_trainer';
import { SummaryWriter } from '../tensorboard';
import { type MetaTrainingConfig, validateMetaTrainingConfig, withRandomMode } from '../experiment_config';
import { resumeHash } from '../train';
import { PopulationSchema, type PopulationConfig } from './config';
import { HParamPerturbation, type MetaParams } from './hparams';
import { PopulationController, STATE_FILE, type Mutator, type PopulationService } from './population';
import { MUTATOR_ALIASES, SINGLE_MEMBER_MUTATORS, mutatorName } from './plugins';
import { ContinuousEval } from '../continuous_eval/single_machine';
import { ContinuousEvalSchema } from '../continuous_eval/evaluation_set';
import { EvalValueWaiter } from './eval_value';

const HPARAM_PREFIX = 'thetaOptimizer.config.';

function getPath(obj: any, p: string): unknown {
  return p.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
}

/** The config with `meta`'s values set at their paths, validated again. */
export function applyMetaParams(cfg: MetaTrainingConfig, meta: MetaParams, registry: Registry): MetaTrainingConfig {
  const out: any = structuredClone(cfg);
  for (const [p, v] of Object.entries(meta)) {
    const keys = p.split('.');
    const parent = keys.slice(0, -1).reduce((o, k) => o[k], out);
    parent[keys[keys.length - 1]] = v;
  }
  return validateMetaTrainingConfig(out, registry);
}

/**
 * A checked `population:` section: the config, the resolved mutator and its config, and each member's
 * starting hyper-parameters.
 */
export interface ValidatedPopulation {
  population: PopulationConfig;
  /** The registered mutator name (an alias resolved) and its parsed config. */
  mutatorName: string;
  mutatorConfig: unknown;
  /** Each member's starting hyper-parameters. */
  initial: MetaParams[];
}

/**
 * Checks the `population:` section against the registry and the rest of the config; errors name
 * the field (`population.hparams.<path>`, `population.mutator.config.<field>`, ...).
 */
export function validatePopulation(cfg: MetaTrainingConfig, registry: Registry = processRegistry): ValidatedPopulation {
  const parsed = PopulationSchema.safeParse(cfg.population ?? {});
  if (!parsed.success) throw new ConfigError(`population: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const pop = parsed.data;
  const name = mutatorName(pop.mutator.name);
  if (!registry.has('population_mutator', name)) {
    const names = registry.list('population_mutator').map((e) => e.name);
    throw new ConfigError(`population.mutator.name: unknown population mutator '${pop.mutator.name}' (allowed: ${[...names, ...Object.keys(MUTATOR_ALIASES)].join(', ')})`);
  }
  let mutatorConfig: any;
  try {
    mutatorConfig = registry.parseConfig('population_mutator', name, pop.mutator.config);
  } catch (e) {
    throw new ConfigError(`population.mutator.config: ${(e as Error).message}`);
  }
  if (SINGLE_MEMBER_MUTATORS.has(name) && pop.members !== 1) {
    throw new ConfigError(`population.members: ${name} drives a single member, got ${pop.members} (use --members 1)`);
  }
  if (name === 'BranchingSingleMachine') {
    for (const k of ['exploreSteps', 'exploitSteps'] as const) {
      if (mutatorConfig[k] % pop.evalEvery !== 0) {
        throw new ConfigError(`population.mutator.config.${k}: ${mutatorConfig[k]} must be a multiple of population.evalEvery (${pop.evalEvery}): each branch is compared at its value ${mutatorConfig.exploreSteps} steps in`);
      }
    }
  }
  const paths = Object.keys(pop.hparams);
  if (!paths.length) throw new ConfigError('population.hparams: name at least one hyper-parameter to tune, e.g. thetaOptimizer.config.learningRate');
  const optFields = Object.keys(cfg.thetaOptimizer.config ?? {});
  for (const p of paths) {
    const field = `population.hparams.${p}`;
    if (!p.startsWith(HPARAM_PREFIX) || p.length === HPARAM_PREFIX.length) {
      throw new ConfigError(`${field}: a population tunes the theta optimizer's hyper-parameters, paths ${HPARAM_PREFIX}<field> (fields of ${cfg.thetaOptimizer.name}: ${optFields.join(', ')})`);
    }
    if (typeof getPath(cfg, p) !== 'number') {
      throw new ConfigError(`${field}: ${cfg.thetaOptimizer.name} has no numeric field '${p.slice(HPARAM_PREFIX.length)}' (its fields: ${optFields.join(', ')})`);
    }
    const init = pop.hparams[p].init;
    if (Array.isArray(init) && init.length !== pop.members) throw new ConfigError(`${field}.init: ${init.length} values for ${pop.members} members (give one, or one per member)`);
  }
  if (name === 'FixedSchedule') {
    for (const [step, entry] of Object.entries(mutatorConfig.schedule as Record<string, Record<string, number>>)) {
      for (const p of Object.keys(entry)) {
        if (!paths.includes(p)) throw new ConfigError(`population.mutator.config.schedule.${step}: '${p}' is not a tuned hyper-parameter (population.hparams: ${paths.join(', ')})`);
      }
    }
  }
  const initial = Array.from({ length: pop.members }, (_, i) =>
    Object.fromEntries(
      paths.map((p) => {
        const init = pop.hparams[p].init;
        return [p, init === undefined ? (getPath(cfg, p) as number) : Array.isArray(init) ? init[i] : init];
      }),
    ),
  );
  for (const p of paths) {
    if (pop.hparams[p].perturb === 'log' && initial.some((m) => !(m[p] > 0))) throw new ConfigError(`population.hparams.${p}: a 'log' perturbation needs positive values, got ${initial.map((m) => m[p]).join(', ')}`);
  }
  // Every member's config must be valid with its starting values.
  initial.forEach((m, i) => {
    try {
      applyMetaParams(cfg, m, registry);
    } catch (e) {
      throw new ConfigError(`population.hparams: member ${i}'s starting values ${JSON.stringify(m)} make an invalid config: ${(e as Error).message}`);
    }
  });
  return { population: pop, mutatorName: name, mutatorConfig, initial };
}

/** Builds the configured mutator. */
export function makeMutator(v: ValidatedPopulation, registry: Registry = processRegistry): Mutator {
  const perturbation = new HParamPerturbation(v.population.hparams, v.population.seed);
  return registry.create<Mutator, 'population_mutator'>('population_mutator', v.mutatorName, v.mutatorConfig, { perturbation });
}

/**
 * Options of {@link trainPopulation}: log directory, registry, resume, backend, abort signal, progress
 * events, the value members report, and remote members.
 */
export interface PopulationTrainOptions {
  logdir: string;
  experiment?: string;
  registry?: Registry;
  /** Continue the population in `logdir` from its state file. */
  resume?: boolean;
  backend?: string;
  /** Plugin packages (paths) the eval worker threads of `value: eval` load, as the CLI's `--plugin`. */
  plugins?: string[];
  /** Aborting it stops after the current member's segment (the state file is always current). */
  signal?: AbortSignal;
  onEvent?: (event: PopulationEvent) => void;
  /**
   * The value a member reports (lower is better) instead of the config's `value`: e.g. an
   * evaluation of the checkpoint. Gets the mean meta-training loss of the segment as `trainLoss`.
   * Without it, `value: eval` starts an eval chief per member (ContinuousEval: worker threads).
   */
  valueFn?: (info: { member: number; step: number; metaParams: MetaParams; trainLoss: number; checkpoint: string }) => number | Promise<number>;
  /**
   * Run only `members` of the population, against a controller in another process (`service`),
   * instead of all members against a controller made here. Checkpoint paths are handed between
   * processes: `logdir` must be the same directory for all (one machine or a shared filesystem).
   */
  remote?: { service: PopulationService; members: number[] };
}

/**
 * What {@link trainPopulation} reports while it runs: start, a member switching generation, a report, log
 * lines.
 */
export type PopulationEvent =
  | { type: 'start'; members: number; mutator: string; total: number; resumed: boolean; logdir: string; backend: string }
  | { type: 'switch'; member: number; generationId: string; metaParams: MetaParams; step: number; from: string | null }
  | { type: 'report'; member: number; generationId: string; step: number; value: number; metaParams: MetaParams }
  | { type: 'log'; message: string };

/** One value a member reported: step, generation, hyper-parameters, value and checkpoint path. */
export interface PopulationReport {
  step: number;
  generationId: string;
  metaParams: MetaParams;
  value: number;
  checkpoint: string;
}

/** Where a member stands at the end of {@link trainPopulation}, and its last report. */
export interface PopulationMemberResult {
  /** Where the member stands now: after the last report the mutator may have moved it on. */
  step: number;
  generationId: string | null;
  metaParams: MetaParams | null;
  /** Its last report in this call (null if it made none). */
  lastReport: PopulationReport | null;
}

/**
 * What {@link trainPopulation} did: each member's result, the best member, generations made, and whether it
 * was interrupted.
 */
export interface PopulationResult {
  logdir: string;
  members: PopulationMemberResult[];
  /** The member whose last reported value is lowest (NaN never counts as lowest). */
  best: number;
  /** Generations the population made in all (the initial ones included); null with a remote controller. */
  generations: number | null;
  interrupted: boolean;
}

interface Member {
  id: number;
  gen: string | null;
  step: number;
  params: string | null;
  meta: MetaParams | null;
  trainer: MetaTrainer | null;
  state: MetaTrainerState | null;
  checkpoints: CheckpointManager;
  writer: SummaryWriter;
  lastReport: PopulationReport | null;
  /** population.value eval: the member's eval chief (worker threads) and its results. */
  evaluation: { ce: ContinuousEval; waiter: EvalValueWaiter } | null;
}

/** Trains the config's population into `opts.logdir`. */
export async function trainPopulation(config: MetaTrainingConfig, opts: PopulationTrainOptions): Promise<PopulationResult> {
  const registry = opts.registry ?? processRegistry;
  const cfg = withRandomMode(validateMetaTrainingConfig(config, registry));
  const v = validatePopulation(cfg, registry);
  const pop = v.population;
  const logdir = opts.logdir;
  const remote = opts.remote;
  if (remote) {
    const bad = remote.members.find((i) => !Number.isInteger(i) || i < 0 || i >= pop.members);
    if (bad !== undefined || !remote.members.length) throw new ConfigError(`member ${bad ?? '(none)'}: this population's members are 0..${pop.members - 1}`);
  } else {
    const statePath = path.join(logdir, STATE_FILE);
    if (opts.resume && !fs.existsSync(statePath)) throw new ConfigError(`--resume: no ${STATE_FILE} in ${logdir}`);
    if (!opts.resume && fs.existsSync(statePath)) throw new ConfigError(`${logdir} already holds a population (${STATE_FILE}); pass --resume to continue it, or choose another --logdir`);
  }
  const emit = (e: PopulationEvent) => opts.onEvent?.(e);
  const log = (message: string) => emit({ type: 'log', message });

  await initBackend(opts.backend === undefined || opts.backend === '' ? undefined : opts.backend);
  const local = remote ? null : new PopulationController(v.initial, makeMutator(v, registry), { logDir: logdir, log });
  const controller: PopulationService = remote ? remote.service : local!;
  fs.mkdirSync(logdir, { recursive: true });
  if (local) fs.writeFileSync(path.join(logdir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const hash = resumeHash(cfg);
  const total = cfg.steps;
  const members: Member[] = (remote ? remote.members : Array.from({ length: pop.members }, (_, id) => id)).map((id) => {
    const dir = path.join(logdir, 'members', String(id));
    return {
      id,
      gen: null,
      step: 0,
      params: null,
      meta: null,
      trainer: null,
      state: null,
      checkpoints: new CheckpointManager({ dir, keep: pop.keepCheckpoints }),
      writer: new SummaryWriter(dir),
      lastReport: null,
      evaluation: null,
    };
  });
  // population.value eval: each member's checkpoints go to an eval chief of its own, in
  // <member dir>/<chiefName>/ with eval.numWorkers worker threads; every reported checkpoint is
  // evaluated (no skipping when busy) and its eval.evalTag result is the member's value.
  if (pop.value === 'eval' && !opts.valueFn) {
    const evalCfg = { ...cfg, eval: { ...(cfg.eval ?? ContinuousEvalSchema.parse({})), skipCheckpointsIfBusy: false } };
    try {
      for (const m of members) {
        const waiter = new EvalValueWaiter(pop.evalTag);
        const ce = await ContinuousEval.start({ logdir: m.checkpoints.logdir, config: evalCfg, backend: tf.getBackend(), plugins: opts.plugins, log: (l) => log(`member ${m.id}: ${l}`), onWritten: waiter.onWritten, onFailure: waiter.fail });
        m.evaluation = { ce, waiter };
      }
    } catch (e) {
      for (const m of members) await m.evaluation?.ce.close();
      throw e;
    }
  }
  emit({ type: 'start', members: pop.members, mutator: v.mutatorName, total, resumed: local?.resumed ?? false, logdir, backend: tf.getBackend() });

  // Takes what the controller hands a member: hyper-parameters (a rebuilt trainer) and a checkpoint.
  const switchTo = async (m: Member, next: { generationId: string; metaParams: unknown; params: unknown; step: number }) => {
    const meta = next.metaParams as MetaParams;
    if (!m.trainer || JSON.stringify(meta) !== JSON.stringify(m.meta)) {
      if (m.trainer) await m.trainer.dispose(null);
      m.trainer = new MetaTrainer(applyMetaParams(cfg, meta, registry), registry);
    }
    const from = (next.params ?? null) as string | null;
    if (from !== null) {
      const { meta: ckMeta, tree } = await readCheckpointDir<PyTree>(from);
      if (m.state) treeDispose(m.state as unknown as PyTree);
      m.state = tree as unknown as MetaTrainerState;
      if (ckMeta.dataStreams) m.trainer.restoreStreamStates(ckMeta.dataStreams as any);
      m.step = ckMeta.step;
    } else {
      // No checkpoint: the generation starts from scratch (reference examples/simple_cnn/train.py:
      // `state_path is None` initialises a new model), e.g. a branch from the initial population.
      if (m.state) treeDispose(m.state as unknown as PyTree);
      m.state = await m.trainer.init();
      m.step = 0;
    }
    if (m.step !== next.step) log(`member ${m.id}: generation ${next.generationId} is at step ${next.step}, its checkpoint at ${m.step}`);
    m.gen = next.generationId;
    m.meta = meta;
    m.params = from;
    emit({ type: 'switch', member: m.id, generationId: m.gen, metaParams: meta, step: m.step, from });
  };

  // One segment: evalEvery outer steps, a checkpoint, a report.
  const segment = async (m: Member) => {
    const trainer = m.trainer!;
    const end = Math.min(total, m.step + pop.evalEvery);
    let lossSum = 0;
    let n = 0;
    for (let i = m.step; i < end; i++) {
      const [next, res] = await trainer.step(m.state!, i);
      m.state = next;
      m.step = i + 1;
      lossSum += res.loss;
      n += 1;
      m.writer.scalar('outer/loss', res.loss, i);
    }
    const saved = await m.checkpoints.saveNow({
      step: m.step,
      state: m.state as unknown as PyTree,
      theta: trainer.learner.getMetaParams(m.state!.learnerState) as PyTree,
      dataStreams: trainer.streamStates(),
      rngKey: trainer.stepKey(m.step),
      configHash: hash,
      extra: { generationId: m.gen, metaParams: m.meta },
    });
    m.params = saved.checkpointPath;
    const trainLoss = lossSum / n;
    const ev = m.evaluation;
    const value = opts.valueFn
      ? await opts.valueFn({ member: m.id, step: m.step, metaParams: m.meta!, trainLoss, checkpoint: saved.checkpointPath })
      : ev
        ? await ev.waiter.valueOf(saved, (force) => ev.ce.onCheckpoint({ force }))
        : trainLoss;
    m.lastReport = { step: m.step, generationId: m.gen!, metaParams: m.meta!, value, checkpoint: saved.checkpointPath };
    m.writer.scalars({ 'population/value': value, ...Object.fromEntries(Object.entries(m.meta!).map(([k, x]) => [`population/${k}`, x])) }, m.step);
    m.writer.flush();
    await controller.setEval(m.id, m.gen!, m.step, saved.checkpointPath, value);
    emit({ type: 'report', member: m.id, generationId: m.gen!, step: m.step, value, metaParams: m.meta! });
  };

  // The member furthest behind goes next (ties: the lowest id): in a fresh run that is round
  // robin, and after a restart the members that had not yet reported in the interrupted round go
  // first, so a resumed population replays exactly what an uninterrupted one would have done.
  // `settled`: polled at the end (step >= total) with nothing new since; all settled = done.
  const settled = new Set<number>();
  let interrupted = false;
  try {
    for (;;) {
      if (opts.signal?.aborted) {
        interrupted = members.some((m) => m.step < total);
        break;
      }
      const open = members.filter((m) => !settled.has(m.id));
      if (!open.length) break;
      const furthestBehind = (ms: Member[]) => ms.reduce((a, b) => (b.step < a.step ? b : a));
      const m = furthestBehind(open);
      const next = await controller.maybeGetWorkerData(m.id, m.gen, m.gen === null ? null : m.step, m.params, m.meta);
      if (next) {
        await switchTo(m, next);
        // Moved ahead (a restarted member took up its checkpoint): another may be behind it now.
        if (furthestBehind(open) !== m) continue;
      }
      if (m.step >= total) {
        settled.add(m.id);
        continue;
      }
      await segment(m);
      settled.clear(); // a report may have moved any member (a mutator ran)
      await new Promise<void>((resolve) => setImmediate(resolve)); // let signals in
    }
  } finally {
    for (const m of members) {
      await m.evaluation?.ce.close();
      m.writer.close();
      if (m.state) treeDispose(m.state as unknown as PyTree);
      if (m.trainer) await m.trainer.dispose(null);
    }
  }
  const results = members.map((m) => ({ step: m.step, generationId: m.gen, metaParams: m.meta, lastReport: m.lastReport }));
  let best = 0;
  results.forEach((r, i) => {
    const v = r.lastReport?.value ?? NaN;
    const b = results[best].lastReport?.value ?? NaN;
    if (!Number.isNaN(v) && (Number.isNaN(b) || v < b)) best = i;
  });
  return { logdir, members: results, best, generations: local ? local.generations().size : null, interrupted };
}
