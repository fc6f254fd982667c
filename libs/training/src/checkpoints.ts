/**
 * When a meta-training run saves checkpoints, how many it keeps, and how it resumes
 * (`CheckpointManager`), over core's checkpoint format (`checkpoint.ts` in @lopt/core):
 *
 * ```
 * <logdir>/checkpoints/checkpoint_<n>/state.tree   full learner state
 *                                    /meta.json    step, elapsed time, inner steps, data-stream
 *                                                  states, RNG key, config hash, file checksums
 * <logdir>/checkpoints/params_<n>/theta.tree       meta-parameters only (for evaluation)
 *                                /meta.json
 * ```
 * `n` is the reference's sequential save index (last index + 1, starting at 0), not the training
 * step; the step is recorded in meta.json. Only the newest `keep` of each prefix are kept.
 * Restoring a corrupt or missing checkpoint throws a CheckpointError: a run never silently starts
 * fresh over a damaged one.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  CHECKPOINT_PREFIX,
  CheckpointError,
  PARAMS_PREFIX,
  listIndices,
  loadParams,
  readCheckpointDir,
  removeStaleTemps,
  writeCheckpointDir,
  type CheckpointInfo,
  type CheckpointKind,
  type CheckpointMeta,
  type PyTree,
} from '@lopt/core';

/**
 * What {@link CheckpointManager} saves: the checkpoint metadata, the full learner state and, optionally, θ
 * alone.
 */
export interface CheckpointPayload extends CheckpointInfo {
  /** The full learner state pytree (theta, theta optimizer state, ...). */
  state: PyTree;
  /** Meta-parameters alone, written to `params_<n>`; omit to skip the params file. */
  theta?: PyTree;
}

/**
 * A checkpoint just written: its index, step and the paths of `checkpoint_<n>` and `params_<n>` (null without
 * θ).
 */
export interface SavedCheckpoint {
  index: number;
  step: number;
  checkpointPath: string;
  paramsPath: string | null;
}

/** A checkpoint read back: index, path, step, state, metadata and RNG key. */
export interface RestoredCheckpoint<T extends PyTree = PyTree> {
  index: number;
  path: string;
  step: number;
  state: T;
  meta: CheckpointMeta;
  /** `meta.rngKey` as a key again (null if none was saved). */
  rngKey: Uint32Array | null;
}

/**
 * Options of {@link CheckpointManager}: directory, how many to keep, and the save interval in steps and/or
 * seconds.
 */
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

/**
 * Saves, prunes and restores a run's checkpoints (reference `checkpoints.py` as `outer_train.py` uses it):
 * saves when one is due and keeps the newest `keep` of each prefix.
 */
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
    // Nothing is created or removed until the first save: a refused run leaves no trace.
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
    fs.mkdirSync(this.dir, { recursive: true });
    // Leftovers of a save interrupted by a crash: never valid checkpoints, safe to drop.
    removeStaleTemps(this.dir);
    const ckIdx = this.indices('checkpoint');
    const index = ckIdx.length ? ckIdx[ckIdx.length - 1] + 1 : 0;
    const checkpointPath = await writeCheckpointDir(this.dir, 'checkpoint', index, payload.state, payload, this.now());
    let paramsPath: string | null = null;
    if (payload.theta !== undefined) {
      const pIdx = this.indices('params');
      paramsPath = await writeCheckpointDir(this.dir, 'params', pIdx.length ? pIdx[pIdx.length - 1] + 1 : 0, payload.theta, payload, this.now());
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
