/**
 * The file side of serialization.ts (Node only): atomic file writes and `saveTree`/`loadTree`.
 * Split from serialization.ts so that the byte format bundles for a browser without Node's
 * built-ins; importing this module also hands Node's zlib.crc32 (where it exists) to `crc32`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { PyTree } from './tree';
import { SerializationError, deserializeTree, serializeTree, setNativeCrc32 } from './serialization';

const zlibCrc32 = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
if (typeof zlibCrc32 === 'function') setNativeCrc32(zlibCrc32);

/**
 * Writes `data` to `file` atomically: a temporary file in the same directory is written, fsynced
 * and renamed over the target, so readers see the old file or the new one, never a partial one.
 */
export async function atomicWriteFile(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(tmp, 'wx');
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(tmp, file);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  // Persist the rename itself (best effort: not every platform lets a directory be fsynced).
  try {
    const d = await fs.promises.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* ignore */
  }
}

/** Serializes `tree` and writes it to `file` atomically. */
export async function saveTree(file: string, tree: PyTree): Promise<void> {
  await atomicWriteFile(file, serializeTree(tree));
}

/** Reads a file written by `saveTree`; errors are SerializationErrors naming the file. */
export async function loadTree<T extends PyTree = PyTree>(file: string): Promise<T> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    throw new SerializationError(`cannot read: ${(e as Error).message}`, file);
  }
  return deserializeTree<T>(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
}
