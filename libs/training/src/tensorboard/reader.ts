/** Reads TensorBoard event files back (tests, `lopt` subcommands): every CRC is checked. */
import * as fs from 'fs';
import * as path from 'path';
import { decodeRecords } from './record';
import { EventData, decodeEvent } from './proto';

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

export interface ScalarPoint {
  step: number;
  wallTime: number;
  value: number;
}

/** Every scalar (`simple_value`) in the given events, grouped by tag. */
export function scalarsByTag(events: EventData[]): Map<string, ScalarPoint[]> {
  const out = new Map<string, ScalarPoint[]>();
  for (const e of events) {
    for (const v of e.summary?.value ?? []) {
      if (v.simple_value === undefined) continue;
      if (!out.has(v.tag)) out.set(v.tag, []);
      out.get(v.tag)!.push({ step: e.step, wallTime: e.wall_time, value: v.simple_value });
    }
  }
  return out;
}
