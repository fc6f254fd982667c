/**
 * Downloading dataset files into a cache folder, synchronously (dataset loading is synchronous):
 * a child Node process (`download_child.cjs`, a plain script shipped with the package) fetches
 * each file from the first base URL that serves them all, writing `<file>.part` then renaming, so a
 * cache never holds half a file. It gives up on a mirror after `timeoutMs` without a response.
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

/** The child script: beside this file in src/, or in src/ from dist/. */
function childScript(): string {
  for (const dir of [__dirname, path.join(__dirname, '../../src/datasets')]) {
    const p = path.join(dir, 'download_child.cjs');
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`download_child.cjs not found near ${__dirname}`);
}

/** Download `files` from the first of `baseUrls` that has them all, into `dir`; throws with the reason. */
export function downloadFiles(dir: string, files: readonly string[], baseUrls: readonly string[], timeoutMs = 10000): void {
  fs.mkdirSync(dir, { recursive: true });
  try {
    execFileSync(process.execPath, [childScript(), dir, String(timeoutMs), JSON.stringify(files), JSON.stringify(baseUrls)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10 * 60 * 1000,
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`download failed: ${stderr || (e as Error).message}`);
  }
}
