/**
 * The checkpoint format, read and written in one place: a `checkpoint_<n>` or `params_<n>`
 * directory holding one tree file (core's saveTree format) and `meta.json` (step, elapsed time,
 * inner steps, data-stream states, RNG key, config hash, extra fields, and the tree file's size and
 * sha256). Entries are published atomically (a `.tmp-` directory renamed into place), so a crash
 * never leaves a partial one; reading checks the checksum and says what is wrong.
 *
 * The layout follows the reference's `checkpoints.py`, `periodically_save_checkpoint` (which
 * `outer_train.py`, `train_learner` calls with the `checkpoint_` and `params_` prefixes). The
 * policy (when to save, how many to keep, resuming) is @lopt/training's `CheckpointManager`; the
 * learner's `initThetaFromPath` / `initOuterStateFromPath` read the same entries.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import type { PyTree } from './tree';
import { loadTree, saveTree } from './serialization_node';
import { atomicWriteDir } from './atomic_dir';

/** Folder prefix of full-state checkpoints (`checkpoint_<step>`), as the reference's `checkpoint_` files. */
export const CHECKPOINT_PREFIX = 'checkpoint_';
/** Folder prefix of θ-only checkpoints (`params_<step>`), which eval chiefs and `lopt eval` read. */
export const PARAMS_PREFIX = 'params_';
/** `checkpoint`: the whole learner state; `params`: θ alone. */
export type CheckpointKind = 'checkpoint' | 'params';
const TREE_FILE: Record<CheckpointKind, string> = { checkpoint: 'state.tree', params: 'theta.tree' };
/** The JSON file in each checkpoint folder holding its `CheckpointMeta`. */
export const META_FILE = 'meta.json';
const META_FORMAT = 'lopt-checkpoint';
const META_VERSION = 1;

/** A checkpoint that cannot be written or read back (missing, corrupt, or from another config). */
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


/** What `meta.json` holds: format, step, elapsed time, config hash, checksum and caller extras. */
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
    .filter((m) => isCanonicalIndex(m[1]))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * Entries named `<prefix><n>` that no save writes, so none is taken for a checkpoint: an index past
 * the safe integers (`checkpoint_99999999999999999999` would parse as 1e20, then be looked for
 * under another name) or one with leading zeros (`checkpoint_007` is not `checkpoint_7`).
 */
export function strayEntries(dir: string, kind: CheckpointKind): string[] {
  if (!fs.existsSync(dir)) return [];
  const prefix = kind === 'checkpoint' ? CHECKPOINT_PREFIX : PARAMS_PREFIX;
  const re = new RegExp(`^${prefix}(\\d+)$`);
  return fs
    .readdirSync(dir)
    .filter((n) => {
      const m = re.exec(n);
      return m !== null && !isCanonicalIndex(m[1]);
    })
    .sort();
}

/** `digits` is how a save spells a safe-integer index: no leading zeros. */
function isCanonicalIndex(digits: string): boolean {
  const n = Number(digits);
  return Number.isSafeInteger(n) && String(n) === digits;
}

/** The typed fields of meta.json, each in range; returns what is wrong, or null. */
function checkMetaFields(meta: CheckpointMeta): string | null {
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const f = meta.file as unknown as Record<string, unknown>;
  if (!f || typeof f !== 'object' || typeof f.name !== 'string' || !/^[\w.-]+$/.test(f.name) || !count(f.bytes) || typeof f.sha256 !== 'string') {
    return `file is ${JSON.stringify(meta.file)} (expected {name, bytes, sha256} of the tree file beside it)`;
  }
  if (!Number.isSafeInteger(meta.version) || meta.version < 1) return `version is ${JSON.stringify(meta.version)} (a format version >= 1 expected)`;
  if (!count(meta.step)) return `step is ${JSON.stringify(meta.step)} (a non-negative integer expected)`;
  if (meta.index !== undefined && !count(meta.index)) return `index is ${JSON.stringify(meta.index)} (a non-negative integer expected)`;
  if (meta.elapsedTime !== undefined && !(typeof meta.elapsedTime === 'number' && Number.isFinite(meta.elapsedTime) && meta.elapsedTime >= 0)) {
    return `elapsedTime is ${JSON.stringify(meta.elapsedTime)} (a non-negative number of seconds expected)`;
  }
  if (meta.totalInnerSteps !== undefined && !count(meta.totalInnerSteps)) return `totalInnerSteps is ${JSON.stringify(meta.totalInnerSteps)} (a non-negative integer expected)`;
  if (meta.rngKey !== null && meta.rngKey !== undefined) {
    const k = meta.rngKey;
    if (!Array.isArray(k) || k.length !== 2 || !k.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
      return `rngKey is ${JSON.stringify(k)} (two uint32 words expected)`;
    }
  }
  if (meta.configHash !== null && meta.configHash !== undefined && typeof meta.configHash !== 'string') return `configHash is ${JSON.stringify(meta.configHash)} (a string expected)`;
  return null;
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
  const badMeta = checkMetaFields(meta);
  if (badMeta) throw new CheckpointError(`checkpoint ${entryPath} is corrupt: ${META_FILE} ${badMeta}`);
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

/**
 * Writes `<dir>/<prefix><index>` atomically with `tree` and its meta.json; returns its path.
 * `now` (ms) stamps `savedAt`.
 */
export async function writeCheckpointDir(
  dir: string,
  kind: CheckpointKind,
  index: number,
  tree: PyTree,
  info: CheckpointInfo,
  now: number = Date.now(),
): Promise<string> {
  const prefix = kind === 'checkpoint' ? CHECKPOINT_PREFIX : PARAMS_PREFIX;
  const target = path.join(dir, `${prefix}${index}`);
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
      savedAt: new Date(now).toISOString(),
      file: { name: fileName, ...sha256File(treePath) },
    };
    fs.writeFileSync(path.join(tmp, META_FILE), JSON.stringify(meta, null, 2) + '\n');
  });
  return target;
}
