/**
 * Loading meta-parameters for evaluation from any of the files a run (ours or the reference's)
 * leaves behind; the format is detected by content, not by name:
 *
 * - a run's log directory (`<logdir>/checkpoints/params_<n>`: the newest is used),
 * - a `params_<n>` directory (our checkpoint format: `theta.tree` + `meta.json`),
 * - a bare pytree file written by core's `saveTree` (starts with `LOPTTREE`),
 * - a flax msgpack file (the reference's `params_<n>`: `ParameterCheckpoint{params, gen_id, step}`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { PyTree, TREE_MAGIC, deserializeTree } from '@lopt/core';
import { CheckpointError, loadParams, listIndices } from '@lopt/core';
import { CheckpointManager } from '@lopt/training';
import { importFlaxParams, looksLikeFlaxMsgpack } from '../flax_msgpack';

export type ParamsFormat = 'lopt-checkpoint' | 'lopt-tree' | 'flax-msgpack';

export interface LoadedParams {
  theta: PyTree;
  step: number | null;
  format: ParamsFormat;
  /** The file or directory actually read. */
  source: string;
  /** The run's config.json (learnedOptimizer etc.) when the params came from a log directory. */
  runConfig: Record<string, any> | null;
}

function readRunConfig(dir: string): Record<string, any> | null {
  for (const d of [dir, path.dirname(dir), path.dirname(path.dirname(dir))]) {
    const f = path.join(d, 'config.json');
    if (fs.existsSync(f)) {
      try {
        return JSON.parse(fs.readFileSync(f, 'utf8'));
      } catch {
        return null;
      }
    }
  }
  return null;
}

export async function loadThetaFile(p: string): Promise<LoadedParams> {
  if (!fs.existsSync(p)) throw new CheckpointError(`params file ${p} does not exist`);
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, 'meta.json'))) {
      const r = await loadParams(p);
      return { theta: r.theta, step: r.step, format: 'lopt-checkpoint', source: p, runConfig: readRunConfig(p) };
    }
    const ckdir = path.join(p, 'checkpoints');
    if (listIndices(ckdir, 'params').length) {
      const r = await new CheckpointManager({ dir: p }).loadParams();
      return { theta: r.theta, step: r.step, format: 'lopt-checkpoint', source: path.join(ckdir, `params_${r.index}`), runConfig: readRunConfig(p) };
    }
    throw new CheckpointError(`${p} is a directory but neither a params_<n> checkpoint nor a log directory with checkpoints/params_<n>`);
  }
  const bytes = new Uint8Array(fs.readFileSync(p));
  const magic = Buffer.from(bytes.subarray(0, TREE_MAGIC.length)).toString('latin1');
  if (magic === TREE_MAGIC) {
    try {
      return { theta: deserializeTree(bytes, p), step: null, format: 'lopt-tree', source: p, runConfig: readRunConfig(path.dirname(p)) };
    } catch (e) {
      throw new CheckpointError(`params file ${p} is corrupt: ${(e as Error).message}`);
    }
  }
  if (looksLikeFlaxMsgpack(bytes)) {
    const r = importFlaxParams(bytes, p);
    return { theta: r.theta, step: r.step, format: 'flax-msgpack', source: p, runConfig: readRunConfig(path.dirname(p)) };
  }
  throw new CheckpointError(
    `params file ${p}: unknown format (expected a lopt-ts params_<n> directory or tree file starting with ${TREE_MAGIC}, or a flax msgpack file)`,
  );
}
