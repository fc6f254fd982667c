/**
 * A task's datasets: four named splits, each an endless batch stream (reference
 * `tasks/datasets/base.py`, `Datasets`).
 */
import type * as tf from '@tensorflow/tfjs';
import { SPLITS, type BatchStream, type Datasets, type SplitName } from '../base';
import type { RecordStreamCursor } from './tfrecord_stream';

/**
 * Position of a batch stream (seed, epoch, index within the epoch's order), saved in checkpoints so a stream
 * resumes exactly. A streamed split (`StreamingImageBatchStream`) adds `cursor`, where its shard
 * stream stands at `position`, so that a resume seeks there instead of replaying the stream; a
 * state without it (an older checkpoint) is replayed.
 */
export type StreamState = { seed: number; epoch: number; position: number; cursor?: RecordStreamCursor };

/** Shape and dtype of one leaf of a batch. */
export interface AbstractLeaf {
  shape: number[];
  dtype: tf.DataType;
}

/** Thrown for a split name that is not one of {@link SPLITS}; its message lists the allowed names. */
export class SplitNameError extends Error {
  constructor(name: string) {
    super(`unknown split '${name}'; allowed: ${SPLITS.join(', ')}`);
    this.name = 'SplitNameError';
  }
}

/** `name` as a {@link SplitName}; throws {@link SplitNameError} for anything else. */
export function checkSplit(name: string): SplitName {
  if (!(SPLITS as readonly string[]).includes(name)) throw new SplitNameError(name);
  return name as SplitName;
}

/** A Datasets object over four streams. */
export class SplitDatasets implements Datasets {
  readonly splits = SPLITS;
  constructor(
    private readonly streams: Record<SplitName, BatchStream>,
    public extraInfo: Record<string, unknown> = {},
  ) {}
  split(name: string): BatchStream {
    return this.streams[checkSplit(name)];
  }
  /** Every split's stream state, for checkpoints. */
  getState(): Record<SplitName, StreamState> {
    return Object.fromEntries(SPLITS.map((s) => [s, this.streams[s].getState()])) as Record<SplitName, StreamState>;
  }
  setState(state: Partial<Record<SplitName, StreamState>>): void {
    for (const s of SPLITS) if (state[s]) this.streams[s].setState(state[s]!);
  }
}
