/**
 * Checkpoints of a meta-training run, laid out as the reference's `checkpoints.py`,
 * `periodically_save_checkpoint` (which `outer_train.py`, `train_learner` calls with the
 * `checkpoint_` and `params_` prefixes):
 *
 * ```
 * <logdir>/checkpoints/checkpoint_<n>/state.tree   full learner state (core's saveTree format)
 *                                    /meta.json    step, elapsed time, inner steps, data-stream
 *                                                  states, RNG key, config hash, file checksums
 * <logdir>/checkpoints/params_<n>/theta.tree       meta-parameters only (for evaluation)
 *                                /meta.json
 * ```
 * `n` is the reference's sequential save index (last index + 1, starting at 0), not the training
 * step; the step is recorded in meta.json. Each entry is written into a temporary directory
 * (name starting with `.tmp-`) and renamed into place, so a crash never leaves a partial
 * `checkpoint_*`. Only the newest `keep` of each prefix are kept. Restoring a corrupt or missing
 * checkpoint throws a CheckpointError: a run never silently starts fresh over a damaged one.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { PyTree, loadTree, saveTree } from '@lopt/core';
import { atomicWriteDir, removeStaleTemps } from './fsutil';

export const CHECKPOINT_PREFIX = 'checkpoint_';
export const PARAMS_PREFIX = 'params_';
export type CheckpointKind = 'checkpoint' | 'params';
const TREE_FILE: Record<CheckpointKind, string> = { checkpoint: 'state.tree', params: 'theta.tree' };
const META_FILE = 'meta.json';
const META_FORMAT = 'lopt-checkpoint';
const META_VERSION = 1;

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** What the caller knows about the run at save time (all JSON-serializable except `rngKey`). */
export interface CheckpointInfo {
  /** Training (outer) step. */
  step: number;
  /** Seconds of training so far (carried across restarts). */
  elapsedTime?: number;
  totalInnerSteps?: number;
  /** Per-worker / per-estimator data-stream positions, as plain JSON. */
  dataStreams?: unknown;
  rngKey?: Uint32Array | number[];
  /** `configHash(config)` of the experiment config. */
  configHash?: string;
  /** Anything else JSON-serializable. */
  extra?: Record<string, unknown>;
}

export interface CheckpointPayload extends CheckpointInfo {
  /** The full learner state pytree (theta, theta optimizer state, ...). */
  state: PyTree;
  /** Meta-parameters alone, written to `params_<n>`; omit to skip the params file. */
  theta?: PyTree;
}

export interface CheckpointMeta {
  format: typeof META_FORMAT;
  version: number;
  kind: CheckpointKind;
  index: number;
  step: number;
  elapsedTime: number;
  totalInnerSteps: number;
  dataStreams: unknown;
  rngKey: number[] | null;
  configHash: string | null;
  extra: Record<string, unknown>;
  savedAt: string;
  file: { name: string; bytes: number; sha256: string };
}

export interface SavedCheckpoint {
  index: number;
  step: number;
  checkpointPath: string;
  paramsPath: string | null;
}

export interface RestoredCheckpoint<T extends PyTree = PyTree> {
  index: number;
  path: string;
  step: number;
  state: T;
  meta: CheckpointMeta;
  /** `meta.rngKey` as a key again (null if none was saved). */
  rngKey: Uint32Array | null;
}

export interface CheckpointManagerOptions {
  /** The run's log directory; checkpoints go to `<dir>/checkpoints`. */
  dir: string;
  /** How many of each prefix to keep (default 5; the reference keeps 20). */
  keep?: number;
  /** `maybeSave` saves when this many steps passed since the last save. */
  everySteps?: number;
  /** `maybeSave` saves when this many seconds passed since the last save (reference: 600). */
  everySeconds?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

/** A short stable hash of a JSON config (keys sorted), stored in checkpoints to catch resuming with another config. */
export function configHash(config: unknown): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}

function canonicalJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(canonicalJson).join(',')}]`;
  if (x && typeof x === 'object') {
    const obj = x as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(x) ?? 'null';
}

function sha256File(file: string): { bytes: number; sha256: string } {
  const data = fs.readFileSync(file);
  return { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}

/** Indices of `<prefix><n>` entries in `dir`, ascending. */
export function listIndices(dir: string, kind: CheckpointKind): number[] {
  if (!fs.existsSync(dir)) return [];
  const prefix = kind === 'checkpoint' ? CHECKPOINT_PREFIX : PARAMS_PREFIX;
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return fs
    .readdirSync(dir)
    .map((n) => re.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Reads and checks one entry (a `checkpoint_<n>` or `params_<n>` directory). */
export async function readCheckpointDir<T extends PyTree = PyTree>(
  entryPath: string,
): Promise<{ meta: CheckpointMeta; tree: T }> {
  if (!fs.existsSync(entryPath)) throw new CheckpointError(`checkpoint ${entryPath} does not exist`);
  if (!fs.statSync(entryPath).isDirectory()) throw new CheckpointError(`checkpoint ${entryPath} is not a directory`);
  const metaPath = path.join(entryPath, META_FILE);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`checkpoint ${entryPath} is corrupt: cannot read ${META_FILE} (${(e as Error).message})`);
  }
  if (!meta || meta.format !== META_FORMAT || !meta.file || typeof meta.step !== 'number') {
    throw new CheckpointError(`checkpoint ${entryPath} is corrupt: ${META_FILE} is not a lopt checkpoint meta file`);
  }
  if (meta.version > META_VERSION) {
    throw new CheckpointError(`checkpoint ${entryPath} has format version ${meta.version}; this lopt reads up to ${META_VERSION}`);
  }
  const treePath = path.join(entryPath, meta.file.name);
  if (!fs.existsSync(treePath)) throw new CheckpointError(`checkpoint ${entryPath} is corrupt: ${meta.file.name} is missing`);
  const { bytes, sha256 } = sha256File(treePath);
  if (bytes !== meta.file.bytes || sha256 !== meta.file.sha256) {
    throw new CheckpointError(
      `checkpoint ${entryPath} is corrupt: ${meta.file.name} has ${bytes} bytes / sha256 ${sha256.slice(0, 12)}…, ` +
        `meta.json recorded ${meta.file.bytes} bytes / ${String(meta.file.sha256).slice(0, 12)}…`,
    );
  }
  let tree: T;
  try {
    tree = await loadTree<T>(treePath);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${entryPath} is corrupt: ${(e as Error).message}`);
  }
  return { meta, tree };
}

/** Loads meta-parameters from a `params_<n>` directory (or a bare tree file written by saveTree). */
export async function loadParams<T extends PyTree = PyTree>(paramsPath: string): Promise<{ theta: T; step: number | null }> {
  if (fs.existsSync(paramsPath) && fs.statSync(paramsPath).isFile()) {
    try {
      return { theta: await loadTree<T>(paramsPath), step: null };
    } catch (e) {
      throw new CheckpointError(`params file ${paramsPath} is corrupt: ${(e as Error).message}`);
    }
  }
  const { meta, tree } = await readCheckpointDir<T>(paramsPath);
  return { theta: tree, step: meta.step };
}

export class CheckpointManager {
  readonly logdir: string;
  /** `<logdir>/checkpoints`. */
  readonly dir: string;
  readonly keep: number;
  readonly everySteps: number | undefined;
  readonly everySeconds: number | undefined;
  private readonly now: () => number;
  private lastSaveStep: number | null = null;
  private lastSaveTime: number;

  constructor(opts: CheckpointManagerOptions) {
    const keep = opts.keep ?? 5;
    if (!(Number.isInteger(keep) && keep >= 1)) throw new CheckpointError(`keep must be an integer >= 1, got ${opts.keep}`);
    for (const [name, v] of [['everySteps', opts.everySteps], ['everySeconds', opts.everySeconds]] as const) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new CheckpointError(`${name} must be a positive number, got ${v}`);
    }
    this.logdir = opts.dir;
    this.dir = path.join(opts.dir, 'checkpoints');
    this.keep = keep;
    this.everySteps = opts.everySteps;
    this.everySeconds = opts.everySeconds;
    this.now = opts.now ?? Date.now;
    this.lastSaveTime = this.now();
    fs.mkdirSync(this.dir, { recursive: true });
    // Leftovers of a save interrupted by a crash: never valid checkpoints, safe to drop.
    removeStaleTemps(this.dir);
  }

  indices(kind: CheckpointKind = 'checkpoint'): number[] {
    return listIndices(this.dir, kind);
  }

  /** The newest `checkpoint_<n>` (by index), or null when there is none. */
  latest(): { index: number; path: string } | null {
    const idx = this.indices('checkpoint');
    if (!idx.length) return null;
    const index = idx[idx.length - 1];
    return { index, path: path.join(this.dir, `${CHECKPOINT_PREFIX}${index}`) };
  }

  /** Whether `maybeSave(step)` would save now. */
  isDue(step: number): boolean {
    if (this.lastSaveStep !== null && step === this.lastSaveStep) return false;
    const base = this.lastSaveStep ?? 0;
    if (this.everySteps !== undefined && step - base >= this.everySteps) return true;
    if (this.everySeconds !== undefined && this.now() - this.lastSaveTime >= this.everySeconds * 1000) return true;
    return false;
  }

  /** Saves when `everySteps` steps or `everySeconds` seconds passed since the last save (or restore);
   * `getState` is only called then. Resolves to the save, or null. */
  async maybeSave(
    step: number,
    getState: () => CheckpointPayload | Promise<CheckpointPayload>,
  ): Promise<SavedCheckpoint | null> {
    if (!this.isDue(step)) return null;
    const payload = await getState();
    if (payload.step !== step) {
      throw new CheckpointError(`maybeSave(step=${step}) got a state for step ${payload.step}`);
    }
    return this.saveNow(payload);
  }

  /** Writes `checkpoint_<n>` (and `params_<n>` when `theta` is given) now, then prunes old ones. */
  async saveNow(payload: CheckpointPayload): Promise<SavedCheckpoint> {
    if (!Number.isSafeInteger(payload.step) || payload.step < 0) {
      throw new CheckpointError(`checkpoint step must be a non-negative integer, got ${payload.step}`);
    }
    const ckIdx = this.indices('checkpoint');
    const index = ckIdx.length ? ckIdx[ckIdx.length - 1] + 1 : 0;
    const checkpointPath = await this.writeEntry('checkpoint', index, payload.state, payload);
    let paramsPath: string | null = null;
    if (payload.theta !== undefined) {
      const pIdx = this.indices('params');
      paramsPath = await this.writeEntry('params', pIdx.length ? pIdx[pIdx.length - 1] + 1 : 0, payload.theta, payload);
    }
    this.prune();
    this.lastSaveStep = payload.step;
    this.lastSaveTime = this.now();
    return { index, step: payload.step, checkpointPath, paramsPath };
  }

  /** Restores `checkpoint_<index>`; throws a CheckpointError if it is missing or corrupt. */
  async restore<T extends PyTree = PyTree>(index: number, opts: { configHash?: string } = {}): Promise<RestoredCheckpoint<T>> {
    const entryPath = path.join(this.dir, `${CHECKPOINT_PREFIX}${index}`);
    const { meta, tree } = await readCheckpointDir<T>(entryPath);
    if (meta.kind !== 'checkpoint') throw new CheckpointError(`checkpoint ${entryPath} is a '${meta.kind}' entry`);
    if (opts.configHash !== undefined && meta.configHash !== null && meta.configHash !== opts.configHash) {
      throw new CheckpointError(
        `checkpoint ${entryPath} was written with config hash ${meta.configHash}, the current config hashes to ` +
          `${opts.configHash}; resume with the same config or use a new log dir`,
      );
    }
    this.lastSaveStep = meta.step;
    this.lastSaveTime = this.now();
    return {
      index,
      path: entryPath,
      step: meta.step,
      state: tree,
      meta,
      rngKey: meta.rngKey ? Uint32Array.from(meta.rngKey) : null,
    };
  }

  /** Restores the newest checkpoint; null only when the directory holds none at all. A corrupt newest
   * checkpoint is an error (never a silent fall back to an older one or a fresh start). */
  async restoreLatest<T extends PyTree = PyTree>(opts: { configHash?: string } = {}): Promise<RestoredCheckpoint<T> | null> {
    const latest = this.latest();
    if (!latest) return null;
    try {
      return await this.restore<T>(latest.index, opts);
    } catch (e) {
      const older = this.indices('checkpoint').filter((i) => i < latest.index);
      if (e instanceof CheckpointError && older.length) {
        throw new CheckpointError(
          `${e.message}. Older checkpoints exist (${older.map((i) => CHECKPOINT_PREFIX + i).join(', ')}); ` +
            `move ${latest.path} aside to resume from one of them`,
        );
      }
      throw e;
    }
  }

  /** Loads `params_<index>` (default: newest). */
  async loadParams<T extends PyTree = PyTree>(index?: number): Promise<{ theta: T; step: number | null; index: number }> {
    const idx = this.indices('params');
    const i = index ?? idx[idx.length - 1];
    if (i === undefined) throw new CheckpointError(`no ${PARAMS_PREFIX}* in ${this.dir}`);
    return { ...(await loadParams<T>(path.join(this.dir, `${PARAMS_PREFIX}${i}`))), index: i };
  }

  private async writeEntry(kind: CheckpointKind, index: number, tree: PyTree, info: CheckpointInfo): Promise<string> {
    const prefix = kind === 'checkpoint' ? CHECKPOINT_PREFIX : PARAMS_PREFIX;
    const target = path.join(this.dir, `${prefix}${index}`);
    const fileName = TREE_FILE[kind];
    await atomicWriteDir(target, async (tmp) => {
      const treePath = path.join(tmp, fileName);
      await saveTree(treePath, tree);
      const meta: CheckpointMeta = {
        format: META_FORMAT,
        version: META_VERSION,
        kind,
        index,
        step: info.step,
        elapsedTime: info.elapsedTime ?? 0,
        totalInnerSteps: info.totalInnerSteps ?? 0,
        dataStreams: info.dataStreams ?? null,
        rngKey: info.rngKey ? Array.from(info.rngKey) : null,
        configHash: info.configHash ?? null,
        extra: info.extra ?? {},
        savedAt: new Date(this.now()).toISOString(),
        file: { name: fileName, ...sha256File(treePath) },
      };
      fs.writeFileSync(path.join(tmp, META_FILE), JSON.stringify(meta, null, 2) + '\n');
    });
    return target;
  }

  private prune(): void {
    for (const kind of ['checkpoint', 'params'] as const) {
      const idx = this.indices(kind);
      const prefix = kind === 'checkpoint' ? CHECKPOINT_PREFIX : PARAMS_PREFIX;
      for (const i of idx.slice(0, Math.max(0, idx.length - this.keep))) {
        fs.rmSync(path.join(this.dir, `${prefix}${i}`), { recursive: true, force: true });
      }
    }
  }
}
