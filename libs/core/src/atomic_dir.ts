/**
 * Atomic publication of a whole directory (temp directory + fsync + rename), used for checkpoints.
 * Single files go through `atomicWriteFile` (serialization.ts).
 */
// Default import: calls go through the live module object, so tests can simulate a crash with jest.spyOn(fs, ...).
import fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

/** Prefix of every temporary name this module creates; never matches `checkpoint_*`/`params_*`. */
export const TMP_PREFIX = '.tmp-';

/** A fresh temporary name beside `target` (same directory, so rename is atomic). */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `${TMP_PREFIX}${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}`);
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Directory fsync is not supported everywhere (e.g. some network filesystems); best effort.
  }
}

/**
 * Publishes a directory atomically: `fill(tmpDir)` writes its contents into a temporary
 * directory, which is then renamed to `target` (which must not exist yet). If `fill` throws, the
 * temporary directory is removed and nothing named `target` ever appears.
 */
export async function atomicWriteDir(target: string, fill: (tmpDir: string) => void | Promise<void>): Promise<void> {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  fs.mkdirSync(tmp);
  try {
    await fill(tmp);
    for (const name of fs.readdirSync(tmp)) {
      const fd = fs.openSync(path.join(tmp, name), 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    fsyncDir(tmp);
    if (fs.existsSync(target)) throw new Error(`refusing to overwrite existing ${target}`);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  fsyncDir(path.dirname(target));
}

/** Removes leftovers of interrupted atomic writes in `dir` (names starting with TMP_PREFIX). */
export function removeStaleTemps(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(TMP_PREFIX)) {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}
