/** Reads TensorBoard event files back (tests, `lopt` subcommands): every CRC is checked. */
import * as fs from 'fs';
import * as path from 'path';
import { decodeRecords } from '@lopt/core';
import { EventData, SESSION_START, decodeEvent } from './proto';

/** All events in one file, in order; throws a RecordCorruptionError naming the offset of a bad record. */
export function readEventFile(file: string): EventData[] {
  return decodeRecords(fs.readFileSync(file), file).map(decodeEvent);
}

/** Event files (names containing `tfevents`) directly inside `logdir`, oldest name first. */
export function listEventFiles(logdir: string): string[] {
  if (!fs.existsSync(logdir)) return [];
  return fs
    .readdirSync(logdir)
    .filter((n) => n.includes('tfevents'))
    .sort()
    .map((n) => path.join(logdir, n));
}

/** One scalar of an event file: step, wall time (seconds) and value. */
export interface ScalarPoint {
  step: number;
  wallTime: number;
  value: number;
}

/**
 * Every scalar (`simple_value`) in the given events (in the order written), grouped by tag. A
 * `SessionLog.START` at step s drops the points at steps >= s read before it, as TensorBoard's
 * EventAccumulator does (`_CheckForRestartAndMaybePurge`): a resumed run restarts there, so what a
 * killed process logged past its checkpoint is not shown twice.
 */
export function scalarsByTag(events: EventData[]): Map<string, ScalarPoint[]> {
  const out = new Map<string, ScalarPoint[]>();
  for (const e of events) {
    if (e.session_log?.status === SESSION_START) {
      for (const [tag, pts] of out) out.set(tag, pts.filter((p) => p.step < e.step));
    }
    for (const v of e.summary?.value ?? []) {
      if (v.simple_value === undefined) continue;
      if (!out.has(v.tag)) out.set(v.tag, []);
      out.get(v.tag)!.push({ step: e.step, wallTime: e.wall_time, value: v.simple_value });
    }
  }
  return out;
}
