/**
 * `SummaryWriter`: writes TensorBoard event files (`events.out.tfevents.<secs>.<host>.<pid>.<n>`)
 * without TensorFlow. Records are buffered and appended to an fd held open in append mode;
 * the buffer is flushed when it grows past `maxQueue` records, every `flushSeconds` (an unref'd
 * timer, so it never keeps the process alive), on `flush()` and on `close()`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeRecord } from '@lopt/core';
import {
  DATA_CLASS_TENSOR,
  DT_STRING,
  EventData,
  FILE_VERSION,
  HistogramData,
  SESSION_START,
  SummaryValue,
  encodeEvent,
} from './proto';

/** Options of {@link SummaryWriter}: queue length and flush interval, file name suffix. */
export interface SummaryWriterOptions {
  /** Flush when this many records are queued (default 100). */
  maxQueue?: number;
  /** Flush at least this often while records are queued (default 2 s; 0 turns the timer off). */
  flushSeconds?: number;
  /** Appended to the file name (e.g. '.learner'). */
  filenameSuffix?: string;
}

let fileCounter = 0;

/** Equal-width histogram in TensorBoard's legacy `HistogramProto` layout (as tensorboardX writes it):
 * `bucket[i]` counts values in (bucket_limit[i-1], bucket_limit[i]]; the first bucket is an empty
 * one whose limit is the left edge, so the viewer knows where the range starts. Non-finite values are
 * left out. */
export function makeHistogram(values: ArrayLike<number>, bins = 30): HistogramData {
  if (!(Number.isInteger(bins) && bins >= 1)) throw new Error(`histogram bins must be a positive integer, got ${bins}`);
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  let num = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    num++;
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (num === 0) return { min: 0, max: 0, num: 0, sum: 0, sum_squares: 0, bucket_limit: [], bucket: [] };
  let lo = min;
  let hi = max;
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    let b = Math.floor((v - lo) / width);
    if (b >= bins) b = bins - 1;
    if (b < 0) b = 0;
    counts[b]++;
  }
  const edges = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + i * width));
  // Trim empty buckets at both ends, keeping a leading zero bucket at the left edge.
  let first = 0;
  while (counts[first] === 0) first++;
  let last = bins - 1;
  while (counts[last] === 0) last--;
  return {
    min,
    max,
    num,
    sum,
    sum_squares: sumSq,
    bucket_limit: edges.slice(first, last + 2),
    bucket: [0, ...counts.slice(first, last + 1)],
  };
}

/**
 * Writes a TensorBoard event file (scalars, histograms, text, `SessionLog.START`) without TensorFlow,
 * buffered and flushed to disk (what the reference's `summary.py` writers do through TensorFlow).
 */
export class SummaryWriter {
  readonly logdir: string;
  readonly path: string;
  private fd: number | null;
  private queue: Buffer[] = [];
  private readonly maxQueue: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(logdir: string, options: SummaryWriterOptions = {}) {
    this.logdir = logdir;
    this.maxQueue = options.maxQueue ?? 100;
    fs.mkdirSync(logdir, { recursive: true });
    const secs = Math.floor(Date.now() / 1000);
    const name = `events.out.tfevents.${secs}.${os.hostname()}.${process.pid}.${fileCounter++}${options.filenameSuffix ?? ''}`;
    this.path = path.join(logdir, name);
    this.fd = fs.openSync(this.path, 'a');
    this.push({ wall_time: Date.now() / 1000, step: 0, file_version: FILE_VERSION });
    this.flush();
    const flushSeconds = options.flushSeconds ?? 2;
    if (flushSeconds > 0) {
      this.timer = setInterval(() => {
        if (this.queue.length) this.flush();
      }, flushSeconds * 1000);
      this.timer.unref();
    }
  }

  get closed(): boolean {
    return this.fd === null;
  }

  /** Writes one Event (wall time filled in if missing). */
  writeEvent(event: Omit<EventData, 'wall_time'> & { wall_time?: number }): void {
    this.push({ wall_time: Date.now() / 1000, ...event });
  }

  /** Writes Summary values at `step` in one Event. */
  writeSummary(values: SummaryValue[], step: number): void {
    this.writeEvent({ step: checkStep(step), summary: { value: values } });
  }

  scalar(tag: string, value: number, step: number): void {
    this.writeSummary([{ tag, simple_value: value }], step);
  }

  /** Several scalars at one step, in one Event. */
  scalars(values: Record<string, number>, step: number): void {
    this.writeSummary(
      Object.entries(values).map(([tag, v]) => ({ tag, simple_value: v })),
      step,
    );
  }

  histogram(tag: string, values: Float32Array | ArrayLike<number>, step: number, bins = 30): void {
    this.writeSummary([{ tag, histo: makeHistogram(values, bins) }], step);
  }

  /** A markdown text summary, as TensorBoard's text plugin reads it (a scalar DT_STRING tensor). */
  text(tag: string, markdown: string, step: number): void {
    this.writeSummary(
      [
        {
          tag,
          metadata: { plugin_data: { plugin_name: 'text', content: new Uint8Array(0) }, data_class: DATA_CLASS_TENSOR },
          tensor: { dtype: DT_STRING, tensor_shape: {}, string_val: [Buffer.from(markdown, 'utf8')] },
        },
      ],
      step,
    );
  }

  flush(): void {
    if (this.fd === null) throw new Error(`SummaryWriter for ${this.path} is closed`);
    if (!this.queue.length) return;
    const data = Buffer.concat(this.queue);
    this.queue = [];
    let off = 0;
    while (off < data.length) off += fs.writeSync(this.fd, data, off, data.length - off);
  }

  /** Flush and fsync: every record written so far is on disk. */
  sync(): void {
    this.flush();
    if (this.fd !== null) fs.fsyncSync(this.fd);
  }

  /**
   * A `SessionLog.START` at `step`, as TensorFlow writes when a run restarts from a checkpoint:
   * TensorBoard then discards this run's records at or after `step` that an earlier, killed
   * process wrote past its last checkpoint, since those steps are about to be logged again.
   */
  sessionStart(step: number): void {
    this.push({ wall_time: Date.now() / 1000, step: checkStep(step), session_log: { status: SESSION_START } });
  }

  close(): void {
    if (this.fd === null) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
  }

  private push(event: EventData): void {
    if (this.fd === null) throw new Error(`SummaryWriter for ${this.path} is closed`);
    this.queue.push(encodeRecord(encodeEvent(event)));
    if (this.queue.length >= this.maxQueue) this.flush();
  }
}

function checkStep(step: number): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new Error(`summary step must be a non-negative integer, got ${step}`);
  return step;
}
