/**
 * Meta-training of an experiment in this process, into a log directory with TensorBoard event
 * files, checkpoints (resumable), and a loss plot: `train(config, { logdir, threads, signal })`.
 * `lopt run` is this function plus a progress display; a script or notebook calls it directly.
 *
 * `resolveRunConfig` turns an experiment name plus a config file and `--set` overrides into a
 * validated `MetaTrainingConfig` (nothing touches the disk); `train` trains it into a log
 * directory:
 *
 * ```
 * <logdir>/config.json                     the merged, validated config
 * <logdir>/events.out.tfevents.*           scalars, histograms of θ and its gradient, config text
 * <logdir>/loss.png, loss.svg              outer loss and per-family losses vs step
 * <logdir>/checkpoints/checkpoint_<n>/     full MetaTrainerState + stream states, step, elapsed
 * <logdir>/checkpoints/params_<n>/         θ only
 * ```
 * Scalars are logged at the (0-based) index of the outer step that produced them; a checkpoint's
 * `step` is the number of outer steps done (the index of the next one).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, configHash, initBackend, listIndices, strayEntries, PyTree, Registry, registry as processRegistry, treeDispose, treeLeaves, treeLeavesWithPath } from '@lopt/core';
import { ConfigError, applySetOverrides, loadConfigFile, validateExperimentConfig } from './config';
import { CheckpointManager } from './checkpoints';
import { SummaryWriter, listEventFiles, readEventFile } from './tensorboard';
import { writeLossPlot, Series } from './plot';
import { MetaTrainer, type MetaTrainerState } from './meta_trainer';
import { type MetaTrainingConfig, validateMetaTrainingConfig, withRandomMode } from './experiment_config';

/** A run stopped because its meta-gradients stayed entirely non-finite. */
export class DivergenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DivergenceError';
  }
}

/**
 * The tf.js backends a run can ask for: `auto` (the best available), `tensorflow` (tfjs-node or
 * tfjs-node-gpu), `wasm`, `cpu` (core's `initBackend`).
 */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;

/** The most the wasm backend's heap can grow to (its emscripten build's getHeapMax: 4 GiB - 64 KiB). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/**
 * Where {@link resolveRunConfig} takes config fields from besides the preset: a file, `--set` overrides,
 * steps and seed.
 */
export interface RunConfigSources {
  /** A JSON or YAML file of config fields (applied first). */
  configFile?: string;
  /** `path=value` overrides (applied after the file). */
  set?: readonly string[];
  /** Shorthands for `--set steps=N` / `--set seed=S` (applied last). */
  steps?: string | number;
  seed?: string | number;
}

/** The experiment's preset merged with the file, `--set`, `--steps` and `--seed`, fully validated. */
export function resolveRunConfig(registry: Registry, experiment: string, src: RunConfigSources = {}): MetaTrainingConfig {
  if (!registry.has('experiment', experiment)) {
    const names = registry.list('experiment').map((e) => e.name);
    throw new ConfigError(`unknown experiment '${experiment}'; allowed: ${names.length ? names.join(', ') : '(none registered)'}`);
  }
  const overrides = [...(src.set ?? [])];
  if (src.steps !== undefined) overrides.push(`steps=${src.steps}`);
  if (src.seed !== undefined) overrides.push(`seed=${src.seed}`);
  const entry = registry.get('experiment', experiment);
  const what = `config for experiment '${experiment}'`;
  // The preset merged with the file first, so that `--set tasks.0.name=...` indexes the preset's lists.
  const base = validateExperimentConfig(entry.schema, src.configFile ? loadConfigFile(src.configFile) : {}, what);
  const parsed = overrides.length ? validateExperimentConfig(entry.schema, applySetOverrides(base, overrides), what) : base;
  try {
    return validateMetaTrainingConfig(parsed, registry);
  } catch (e) {
    throw new ConfigError(`invalid config for experiment '${experiment}':\n  ${(e as Error).message}`);
  }
}

/** The config hash a checkpoint records: `steps` is left out so a finished run can be extended. */
export function resumeHash(cfg: MetaTrainingConfig): string {
  // `eval` only says how checkpoints are evaluated, not what is trained: it may change on resume
  const { steps: _steps, threefryPartitionable, eval: _eval, ...rest } = cfg;
  // legacy randomness (false) hashes as before the field existed, so older runs still resume
  return configHash(threefryPartitionable ? { ...rest, threefryPartitionable } : rest);
}

/**
 * The random mode a run in `logdir` was started with: its newest checkpoint records it (runs from
 * before the field existed were legacy), else its config.json; undefined for a new run.
 */
export function recordedRandomMode(logdir: string): boolean | undefined {
  const latest = fs.existsSync(path.join(logdir, 'checkpoints')) ? new CheckpointManager({ dir: logdir }).latest() : null;
  if (latest) {
    const recorded = readJson(path.join(latest.path, 'meta.json'))?.extra?.threefryPartitionable;
    return typeof recorded === 'boolean' ? recorded : false;
  }
  const fromConfig = readJson(path.join(logdir, 'config.json'))?.threefryPartitionable;
  return typeof fromConfig === 'boolean' ? fromConfig : undefined;
}

/** 'mean||_MLPImageTask/mean_loss' -> '_MLPImageTask/mean_loss' (aggregation prefix dropped). */
export function metricTag(key: string): string {
  const i = key.indexOf('||');
  return i >= 0 ? key.slice(i + 2) : key;
}

/** Readable, collision-free tags for metric keys (a clash keeps the aggregation as a prefix). */
export class MetricTagger {
  private readonly byKey = new Map<string, string>();
  private readonly used = new Set<string>(['outer/loss', 'outer/raw_loss']);
  tag(key: string): string {
    let t = this.byKey.get(key);
    if (t === undefined) {
      t = metricTag(key);
      if (this.used.has(t)) t = key.replace('||', '/');
      this.byKey.set(key, t);
      this.used.add(t);
    }
    return t;
  }
}

/**
 * `runs/<experiment>-YYYYMMDD-HHMMSS` (local time of `now`): the log directory of a run started without one.
 */
export function defaultLogdir(experiment: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const ts = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return path.join('runs', `${experiment}-${ts}`);
}

/**
 * Options of {@link train}: log directory, registry, resume, backend, threads, plugins, abort signal and
 * progress callback.
 */
export interface TrainOptions {
  /** The log directory (created if missing). */
  logdir: string;
  /** The experiment's name, for logs and the plot title (default 'experiment'). */
  experiment?: string;
  /** The registry the config's plugins come from (default: the process-wide one). */
  registry?: Registry;
  /** Continue the run in `logdir` from its newest checkpoint (same config; steps may grow). */
  resume?: boolean;
  /** tf.js backend name for core's initBackend (undefined: LOPT_BACKEND, else auto). */
  backend?: string;
  /** 1 (default) or 2: PES estimators run their antithetic branches in two worker threads
   * (MetaTrainerOptions.threads; same results, checkpoints in the same layout). */
  threads?: number;
  /** Plugin packages the worker threads load (those named with --plugin). */
  plugins?: string[];
  /** Aborting it stops the run after the current outer step, with a final checkpoint. */
  signal?: AbortSignal;
  /** Progress: called at the start, after every outer step and checkpoint, and with log lines. */
  onEvent?: (event: TrainEvent) => void;
}

/** What `train` reports while it runs. */
export type TrainEvent =
  | { type: 'start'; experiment: string; startStep: number; total: number; backend: string; threads: number; logdir: string }
  | { type: 'step'; step: number; total: number; loss: number; rawLoss: number; metrics: Record<string, unknown> }
  | { type: 'checkpoint'; step: number; path: string }
  | { type: 'log'; message: string };

/**
 * What {@link train} did: steps done, final loss, first non-finite step, whether it was interrupted, the last
 * checkpoint and the time taken.
 */
export interface TrainResult {
  logdir: string;
  startStep: number;
  /** Outer steps done when the run stopped. */
  step: number;
  /** The config's `steps`. */
  total: number;
  /** The last step's meta-loss as used (a non-finite one clipped), and before clipping. */
  finalLoss: number | null;
  finalRawLoss: number | null;
  /** The first step whose loss or meta-gradient was not finite, if any. */
  firstNonFiniteStep: number | null;
  /** True when `signal` stopped the run before `steps`. */
  interrupted: boolean;
  lastCheckpoint: string | null;
  /** Seconds this call trained (not counting earlier parts of a resumed run). */
  seconds: number;
}

interface History {
  /** `outer/loss`: the mean meta-loss as the estimator used it (non-finite losses clipped) */
  outer: { xs: number[]; ys: number[] };
  /** `outer/raw_loss`: the real mean meta-loss, NaN where it was not finite (what the plot draws) */
  raw: { xs: number[]; ys: number[] };
  families: Map<string, { xs: number[]; ys: number[] }>;
}

function emptyHistory(families: string[]): History {
  return { outer: { xs: [], ys: [] }, raw: { xs: [], ys: [] }, families: new Map(families.map((f) => [f, { xs: [], ys: [] }])) };
}

function familyTags(trainer: MetaTrainer): string[] {
  return [...new Set(trainer.families.map((f) => `${f.name}/mean_loss`))];
}

/** Loss history of an earlier part of the run (for the plot after --resume), from its event files. */
function readHistory(logdir: string, before: number, families: string[]): History {
  const h = emptyHistory(families);
  const byTag = new Map<string, Map<number, number>>();
  for (const file of listEventFiles(logdir)) {
    let events;
    try {
      events = readEventFile(file);
    } catch {
      continue; // a torn tail of a killed run's file: the plot just misses those points
    }
    for (const e of events) {
      if (e.step >= before) continue;
      for (const v of e.summary?.value ?? []) {
        if (v.simple_value === undefined) continue;
        if (!byTag.has(v.tag)) byTag.set(v.tag, new Map());
        byTag.get(v.tag)!.set(e.step, v.simple_value);
      }
    }
  }
  const fill = (tag: string, dst: { xs: number[]; ys: number[] }) => {
    const pts = [...(byTag.get(tag) ?? new Map()).entries()].sort((a, b) => a[0] - b[0]);
    for (const [x, y] of pts) {
      dst.xs.push(x);
      dst.ys.push(y);
    }
  };
  fill('outer/loss', h.outer);
  fill(byTag.has('outer/raw_loss') ? 'outer/raw_loss' : 'outer/loss', h.raw);
  for (const [f, dst] of h.families) fill(f, dst);
  return h;
}

function historySeries(h: History): Series[] {
  return [
    // the real loss, so a diverged run shows gaps instead of the clip value (issue 20)
    { name: 'outer loss', ...h.raw },
    ...[...h.families.entries()].filter(([, s]) => s.xs.length).map(([name, s]) => ({ name, ...s })),
  ];
}

/** A state's leaves as `path:dtype[shape]` in flatten order, for comparing structures. */
function stateLayout(tree: PyTree): string[] {
  return treeLeavesWithPath<unknown>(tree).map(([p, l]) => `${p}:${l instanceof tf.Tensor ? `${l.dtype}[${l.shape}]` : typeof l}`);
}

/** Shallow differences between two configs, as `field: a -> b` lines. */
function configDiff(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDiff(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${prefix || '(config)'}: ${JSON.stringify(a)} -> ${JSON.stringify(b)}`];
}

/** A resume refused because `checkpoint` was written with another config (the changed fields named from config.json). */
function configChanged(checkpoint: string, recorded: string, cfg: MetaTrainingConfig, logdir: string): CheckpointError {
  const old = readJson(path.join(logdir, 'config.json'));
  // without a readable config.json the hash mismatch alone is reported
  const diff = old ? configDiff({ ...old, steps: undefined }, { ...cfg, steps: undefined }) : [];
  return new CheckpointError(
    `--resume: ${checkpoint} was written with a different config (hash ${recorded}, now ${resumeHash(cfg)})` +
      (diff.length ? `; changed fields:\n  ${diff.join('\n  ')}` : '') +
      `\nResume with the same experiment and overrides (only 'steps' may change), or use a new --logdir.`,
  );
}

function readJson(file: string): Record<string, any> | undefined {
  try {
    const x = JSON.parse(fs.readFileSync(file, 'utf8'));
    return x && typeof x === 'object' && !Array.isArray(x) ? x : undefined;
  } catch {
    return undefined;
  }
}

/** One host read for all leaves of a θ-shaped list of tensors; values per leaf. */
function readLeaves(leaves: tf.Tensor[]): { all: Float32Array; parts: Float32Array[] } {
  const flat = tf.tidy(() => tf.concat(leaves.map((l) => tf.reshape(l, [-1]))));
  const all = flat.dataSync() as Float32Array;
  flat.dispose();
  const parts: Float32Array[] = [];
  let off = 0;
  for (const l of leaves) {
    parts.push(all.subarray(off, off + l.size));
    off += l.size;
  }
  return { all, parts };
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Trains `config` (a `MetaTrainingConfig`, validated here against the registry) into
 * `opts.logdir`: `const run = await train(config, { logdir, threads, signal, onEvent })`.
 */
export async function train(config: MetaTrainingConfig, opts: TrainOptions): Promise<TrainResult> {
  const registry = opts.registry ?? processRegistry;
  const logdir = opts.logdir;
  const ckDir = path.join(logdir, 'checkpoints');
  const hasCheckpoints = listIndices(ckDir, 'checkpoint').length > 0;
  // names like checkpoint_<n> that no save writes (leading zeros, an index past the safe integers)
  const stray = strayEntries(ckDir, 'checkpoint');
  const strayNote = stray.length ? `${stray.join(', ')} ${stray.length > 1 ? 'are' : 'is'} not a checkpoint a run writes (an index with leading zeros or past ${Number.MAX_SAFE_INTEGER})` : '';
  if (opts.resume && !hasCheckpoints) {
    throw new CheckpointError(
      `--resume: no checkpoint to resume from in ${ckDir}${fs.existsSync(logdir) ? '' : ` (${logdir} does not exist)`}${strayNote ? `; ${strayNote}` : ''}`,
    );
  }
  if (!opts.resume && hasCheckpoints) {
    throw new ConfigError(`${logdir} already holds checkpoints; pass --resume to continue that run, or choose another --logdir`);
  }
  if (!opts.resume && stray.length) throw new ConfigError(`${ckDir}: ${strayNote}; remove it or choose another --logdir`);
  // --resume keeps the random mode the run was started with, unless the config names one.
  const cfg = withRandomMode(validateMetaTrainingConfig(config, registry), opts.resume ? recordedRandomMode(logdir) : undefined);
  // A resume with another config is refused from the checkpoint's meta.json alone, before any
  // size of the new config is built or measured (trainLoop checks the restored checkpoint again).
  if (opts.resume) {
    const latest = new CheckpointManager({ dir: logdir }).latest();
    const recorded = latest ? readJson(path.join(latest.path, 'meta.json'))?.configHash : undefined;
    if (latest && typeof recorded === 'string' && recorded !== resumeHash(cfg)) throw configChanged(latest.path, recorded, cfg, logdir);
  }

  await initBackend(opts.backend === undefined || opts.backend === '' ? undefined : opts.backend);
  const trainer = tooBig(() => new MetaTrainer(cfg, registry, { threads: opts.threads ?? 1, plugins: opts.plugins ?? [] }));
  // Sizes are checked against this machine's memory before the state is made or a file written:
  // first from the families' sizes alone (no sampling), then measured on one sampled task.
  const limit = memoryLimit();
  for (const need of [() => trainer.stateBytesLowerBound(), () => trainer.estimateStateBytes()]) {
    const bytes = tooBig(need);
    if (bytes !== undefined && bytes > 0.75 * limit.bytes) {
      await trainer.dispose(null);
      throw tooMuchMemory(bytes, limit);
    }
  }
  try {
    return await trainLoop(cfg, { ...opts, registry }, trainer);
  } catch (e) {
    throw tooBigError(e);
  } finally {
    await trainer.dispose(null); // stops the worker threads (if any); the state is disposed by trainLoop
  }
}

/**
 * An allocation failure turned into a ConfigError that names the sizes to check: a JS RangeError
 * (typed array too long), or on wasm a WebAssembly.RuntimeError from a kernel that ran past the heap.
 * Any other error is returned as is.
 */
export function tooBigError(e: unknown): unknown {
  const msg = (e as Error)?.message ?? '';
  const jsAlloc = e instanceof RangeError && /Invalid typed array length|Array buffer allocation failed|Invalid array length/.test(msg);
  const wasmHeap = e instanceof Error && e.name === 'RuntimeError' && /memory access out of bounds|offset is out of bounds/.test(msg);
  if (!jsAlloc && !wasmHeap) return e;
  return new ConfigError(
    `the configuration needs more memory than this process can allocate (${msg}); ` +
      `check its sizes, e.g. learnedOptimizer.config.hiddenSize, the tasks' config and tasks.N.numTasks`,
  );
}

function tooBig<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw tooBigError(e);
  }
}

/**
 * The memory a run's state may use: this machine's, or on wasm at most the 4 GiB WebAssembly heap
 * that holds every tensor whatever the machine has (past it an allocation fails deep inside a
 * kernel with "offset is out of bounds").
 */
function memoryLimit(): { bytes: number; wasmHeap: boolean } {
  const onWasm = tf.getBackend() === 'wasm';
  const bytes = onWasm ? Math.min(os.totalmem(), WASM_HEAP_MAX_BYTES) : os.totalmem();
  return { bytes, wasmHeap: onWasm && bytes === WASM_HEAP_MAX_BYTES };
}

/** The ConfigError for a state of `need` bytes that does not fit in `limit`, naming the sizes to lower. */
function tooMuchMemory(need: number, limit: { bytes: number; wasmHeap: boolean }): ConfigError {
  const where = limit.wasmHeap ? "the wasm backend's heap" : "this machine's memory";
  return new ConfigError(
    `the run's state needs about ${(need / 2 ** 30).toFixed(1)} GiB, more than ${where} allows (${(limit.bytes / 2 ** 30).toFixed(1)} GiB in all); ` +
      `lower tasks.N.numTasks or the task and learned-optimizer sizes` +
      (limit.wasmHeap ? ', or use the tensorflow backend (tfjs-node) where it is installed' : ''),
  );
}

/** `threads: auto`: 2 when this machine has at least 2 CPUs, else 1. */
export function resolveThreads(value: string | number | undefined): number {
  if (value === undefined || value === '') return 1;
  if (value === 'auto') return os.cpus().length >= 2 ? 2 : 1;
  const n = Number(value);
  if (n !== 1 && n !== 2) throw new ConfigError(`--threads: '${value}' (allowed: 1, 2, auto)`);
  return n;
}

async function trainLoop(cfg: MetaTrainingConfig, opts: TrainOptions, trainer: MetaTrainer): Promise<TrainResult> {
  const { logdir } = opts;
  const experiment = opts.experiment ?? 'experiment';
  const emit = (e: TrainEvent) => opts.onEvent?.(e);
  const log = (message: string) => emit({ type: 'log', message });
  const ckDir = path.join(logdir, 'checkpoints');
  const hash = resumeHash(cfg);

  const checkpoints = new CheckpointManager({
    dir: logdir,
    keep: cfg.logging.keepCheckpoints,
    everySteps: cfg.logging.checkpointEverySteps,
    everySeconds: cfg.logging.checkpointEverySeconds,
  });

  let state: MetaTrainerState;
  let startStep = 0;
  let elapsedBefore = 0;
  let lastCheckpoint: string | null = null;
  let lastSavedStep = -1;
  if (opts.resume) {
    const restored = await checkpoints.restoreLatest<PyTree>();
    if (!restored) throw new CheckpointError(`--resume: no checkpoint to resume from in ${ckDir}`);
    if (restored.meta.configHash !== null && restored.meta.configHash !== hash) {
      treeDispose(restored.state);
      throw configChanged(restored.path, restored.meta.configHash, cfg, logdir);
    }
    const st = restored.state as unknown as MetaTrainerState;
    if (!st || typeof st !== 'object' || !('learnerState' in st) || !Array.isArray(st.workerStates)) {
      treeDispose(restored.state);
      throw new CheckpointError(`--resume: ${restored.path} does not hold a meta-trainer state (learnerState, workerStates)`);
    }
    // Everything is checked before anything is written: the step against the config, the recorded
    // key against the one the config derives, and the state's structure against a fresh one.
    const refuse = (why: string): never => {
      treeDispose(restored.state);
      throw new CheckpointError(`--resume: ${restored.path}: ${why}`);
    };
    if (restored.step > cfg.steps) refuse(`it is at step ${restored.step}, past steps=${cfg.steps}; resume with --steps ${restored.step} or more`);
    const derived = Array.from(trainer.stepKey(restored.step));
    if (restored.rngKey && Array.from(restored.rngKey).join(',') !== derived.join(',')) {
      refuse(`its rngKey [${Array.from(restored.rngKey)}] is not the key [${derived}] this config derives for step ${restored.step} (a changed seed or an edited meta.json)`);
    }
    // (a single-thread twin builds the fresh state: the threads keep nothing of it)
    const twin = new MetaTrainer(cfg, trainer.registry);
    const fresh = await twin.init();
    const want = stateLayout(fresh as unknown as PyTree);
    await twin.dispose(fresh);
    const got = stateLayout(st as unknown as PyTree);
    const firstDiff = want.find((w, i) => w !== got[i]) ?? got[want.length];
    if (got.length !== want.length || firstDiff !== undefined) {
      refuse(`its state is not what this config builds (another experiment's checkpoint?): expected ${firstDiff === undefined ? `${want.length} leaves, found ${got.length}` : `'${firstDiff}'`}`);
    }
    state = await trainer.importState(st);
    startStep = restored.step;
    elapsedBefore = restored.meta.elapsedTime ?? 0;
    if (restored.meta.dataStreams) {
      try {
        trainer.restoreStreamStates(restored.meta.dataStreams as any);
      } catch (e) {
        treeDispose(state as unknown as PyTree);
        throw new CheckpointError(`--resume: ${restored.path}: its data-stream positions cannot be restored (${(e as Error).message})`);
      }
    }
    lastCheckpoint = restored.path;
    lastSavedStep = startStep;
  } else {
    state = await trainer.init();
  }

  if (opts.resume && startStep >= cfg.steps) {
    // A finished run resumed with the same steps: nothing to train, so nothing is written either
    // (no new event file, config.json and the plot left as they are).
    treeDispose(state as unknown as PyTree);
    const done = readHistory(logdir, startStep, familyTags(trainer)).outer.ys;
    const last = done.length ? done[done.length - 1] : null;
    log(`the run is already at step ${startStep} of ${cfg.steps}: nothing to do, nothing written (raise --steps to continue it)`);
    return {
      logdir,
      startStep,
      step: startStep,
      total: cfg.steps,
      finalLoss: last,
      finalRawLoss: last,
      firstNonFiniteStep: null,
      interrupted: false,
      lastCheckpoint,
      seconds: 0,
    };
  }

  fs.mkdirSync(logdir, { recursive: true });
  fs.writeFileSync(path.join(logdir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');

  const families = familyTags(trainer);
  const history: History = opts.resume
    ? readHistory(logdir, startStep, families)
    : emptyHistory(families);

  const writer = new SummaryWriter(logdir);
  // A resumed run drops, in TensorBoard, whatever a killed process logged past its checkpoint.
  if (opts.resume) writer.sessionStart(startStep);
  writer.text('config', `Experiment \`${opts.experiment}\`\n\n\`\`\`json\n${JSON.stringify(cfg, null, 2)}\n\`\`\``, startStep);
  writer.flush();

  const total = cfg.steps;
  const innerPerOuter = trainer.innerStepsPerOuterStep();
  emit({ type: 'start', experiment, startStep, total, backend: tf.getBackend(), threads: trainer.pool ? trainer.pool.size : 1, logdir });
  const stopRequested = () => Boolean(opts.signal?.aborted);

  const t0 = Date.now();
  const elapsed = () => elapsedBefore + (Date.now() - t0) / 1000;
  const tagger = new MetricTagger();
  let lastScalarTime = Date.now();
  let lastScalarStep = startStep;
  let finalLoss: number | null = history.outer.ys.length ? history.outer.ys[history.outer.ys.length - 1] : null;
  let finalRawLoss: number | null = finalLoss;
  let step = startStep;
  const L = cfg.logging;

  const payload = (s: number, full: MetaTrainerState) => ({
    step: s,
    state: full as unknown as PyTree,
    theta: trainer.learner.getMetaParams(state.learnerState) as PyTree,
    elapsedTime: elapsed(),
    totalInnerSteps: s * innerPerOuter,
    dataStreams: trainer.streamStates(),
    rngKey: trainer.stepKey(s),
    configHash: hash,
    extra: { experiment, threefryPartitionable: cfg.threefryPartitionable ?? false },
  });
  const redrawPlot = async () => {
    if (!history.outer.xs.length) return;
    try {
      await writeLossPlot(logdir, historySeries(history), { title: `${experiment}: meta-training loss` });
    } catch (e) {
      log(`warning: could not draw the loss plot: ${(e as Error).message}`);
    }
  };

  // θ is finite unless the run diverged (one host read, only when a checkpoint is due).
  const thetaIsFinite = () =>
    tf.tidy(() => treeLeaves<tf.Tensor>(trainer.learner.getMetaParams(state.learnerState) as PyTree).every((l) => tf.all(tf.isFinite(l)).dataSync()[0] === 1));
  // A checkpoint never holds a non-finite θ: the newest one stays the last finite one.
  let skippedNonFinite = false;
  // With threads the branch states are fetched from the worker threads for the checkpoint.
  const saveCheckpoint = async (s: number) => {
    if (!thetaIsFinite()) {
      if (!skippedNonFinite) log(`warning: θ is not finite at step ${s}: no checkpoint is written while it stays so (the newest is ${lastCheckpoint ?? 'none'})`);
      skippedNonFinite = true;
      return null;
    }
    // The records up to step s reach the disk before the checkpoint of step s becomes visible,
    // so a kill between the two never loses them (a resume discards any record past it).
    writer.sync();
    const full = await trainer.exportState(state);
    try {
      return await checkpoints.saveNow(payload(s, full.state));
    } finally {
      full.release();
    }
  };

  let failed: unknown = null;
  let firstNonFinite: number | null = null;
  let allNonFiniteRun = 0;
  try {
    for (; step < total && !stopRequested(); ) {
      const i = step;
      const withMetrics = i % L.metricsEvery === 0;
      const keepGrad = i % L.histogramsEvery === 0;
      const [next, res] = await trainer.step(state, i, { withMetrics, keepGrad });
      state = next;
      step = i + 1;
      finalLoss = res.loss;
      finalRawLoss = res.rawLoss;

      // Divergence is never hidden: warn at the first non-finite step, stop after a run of them.
      if (!Number.isFinite(res.rawLoss) || res.nonFiniteGradElements > 0) {
        if (firstNonFinite === null) {
          firstNonFinite = i;
          log(
            `warning: step ${i} is not finite: mean meta-loss ${res.rawLoss} (used as ${res.loss}), ` +
              `${res.nonFiniteGradElements} of ${res.gradElements} meta-gradient elements non-finite (zeroed)`,
          );
        }
      }
      allNonFiniteRun = res.gradElements > 0 && res.nonFiniteGradElements >= res.gradElements ? allNonFiniteRun + 1 : 0;
      // scalars
      const isLast = step === total;
      if (i % L.scalarsEvery === 0 || withMetrics || isLast) {
        const now = Date.now();
        const dt = (now - lastScalarTime) / 1000;
        const rate = dt > 0 ? (step - lastScalarStep) / dt : 0;
        lastScalarTime = now;
        lastScalarStep = step;
        const scalars: Record<string, number> = {
          'outer/loss': res.loss,
          // the mean meta-loss before the estimator's NaN/Inf clip: NaN here when outer/loss shows the clip value
          'outer/raw_loss': res.rawLoss,
          'perf/steps_per_sec': rate,
          'perf/inner_steps_per_sec': rate * innerPerOuter,
          'perf/elapsed_s': elapsed(),
        };
        for (const [k, v] of Object.entries(res.metrics)) {
          if (typeof v === 'number') scalars[tagger.tag(k)] = v;
          else if (Array.isArray(v) && v.length) writer.histogram(tagger.tag(k), v, i);
        }
        writer.scalars(scalars, i);
        history.outer.xs.push(i);
        history.outer.ys.push(res.loss);
        history.raw.xs.push(i);
        history.raw.ys.push(res.rawLoss);
        for (const f of families) {
          const v = scalars[f];
          if (v !== undefined) {
            history.families.get(f)!.xs.push(i);
            history.families.get(f)!.ys.push(v);
          }
        }
      }

      // histograms of θ and its gradient (one host read each)
      if (res.thetaGrad) {
        const thetaTree = trainer.learner.getMetaParams(state.learnerState) as PyTree;
        const paths = treeLeavesWithPath<tf.Tensor>(thetaTree).map(([p]) => p);
        const th = readLeaves(treeLeaves<tf.Tensor>(thetaTree));
        const gradLeaves = treeLeaves<tf.Tensor>(res.thetaGrad);
        const gr = readLeaves(gradLeaves);
        treeDispose(res.thetaGrad);
        writer.histogram('theta/all', th.all, i);
        writer.histogram('theta_grad/all', gr.all, i);
        paths.forEach((p, j) => {
          writer.histogram(`theta/${p}`, th.parts[j], i);
          if (gr.parts[j]) writer.histogram(`theta_grad/${p}`, gr.parts[j], i);
        });
      }

      emit({ type: 'step', step, total, loss: res.loss, rawLoss: res.rawLoss, metrics: res.metrics });
      // (only now, so that the event file holds every step the run made, the last one included)
      if (allNonFiniteRun >= cfg.maxNonFiniteSteps) {
        throw new DivergenceError(
          `the run diverged: every meta-gradient element was non-finite for ${allNonFiniteRun} consecutive outer steps ` +
            `(to step ${i}; first non-finite step ${firstNonFinite}; maxNonFiniteSteps ${cfg.maxNonFiniteSteps}). ` +
            `The newest checkpoint is the last finite one${lastCheckpoint ? ` (${lastCheckpoint})` : ''}; lower the meta learning rate or the perturbation and start again.`,
        );
      }

      const saved = checkpoints.isDue(step) ? await saveCheckpoint(step) : null;
      if (saved) {
        skippedNonFinite = false;
        lastSavedStep = step;
        lastCheckpoint = saved.checkpointPath;
        emit({ type: 'checkpoint', step, path: saved.checkpointPath });
        writer.flush();
        await redrawPlot();
      }
      await nextTick(); // let signals in
    }
  } catch (e) {
    failed = e;
  }

  try {
    // final checkpoint (unless the last maybeSave already wrote this step); never after a failed step
    if (!failed && lastSavedStep !== step) {
      const saved = await saveCheckpoint(step);
      if (saved) lastCheckpoint = saved.checkpointPath;
    }
    await redrawPlot();
  } finally {
    writer.close();
  }
  if (failed) {
    treeDispose(state as unknown as PyTree);
    throw failed;
  }
  treeDispose(state as unknown as PyTree);

  return {
    logdir,
    startStep,
    step,
    total,
    finalLoss,
    finalRawLoss,
    firstNonFiniteStep: firstNonFinite,
    interrupted: step < total,
    lastCheckpoint,
    seconds: elapsed() - elapsedBefore,
  };
}
