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

/** What {@link downloadResumable} expects of the file, and how it reports. */
export interface ResumableDownloadOptions {
  /** The file's size in bytes, when known: checked, and a complete `.part` is not fetched again. */
  size?: number;
  /** The file's sha256 (hex), when known: checked once the file is whole. */
  sha256?: string;
  /** Give up when the server sends nothing for this long (ms; default 60 s). */
  idleTimeoutMs?: number;
  /** Called now and then with the bytes on disk so far and the total when known. */
  onProgress?: (bytes: number, total: number | undefined) => void;
}

/** The sha256 (hex) of a file, read as a stream. */
export async function sha256File(file: string): Promise<string> {
  const { createHash } = await import('crypto');
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Downloads a large file (asynchronously, streamed to disk) into `file`, resuming a `file.part`
 * left by an earlier, interrupted try with an HTTP `Range` request (a server that answers the
 * range with the whole file, 200, makes it start over). Once the size (and sha256) match, the
 * `.part` is renamed to `file`; a mismatch deletes it and throws. An existing `file` is checked
 * the same way and kept.
 */
export async function downloadResumable(url: string, file: string, opts: ResumableDownloadOptions = {}): Promise<void> {
  const check = async (f: string) => {
    const size = fs.statSync(f).size;
    if (opts.size !== undefined && size !== opts.size) return `${size} bytes, expected ${opts.size}`;
    if (opts.sha256) {
      const got = await sha256File(f);
      if (got !== opts.sha256.toLowerCase()) return `sha256 ${got}, expected ${opts.sha256}`;
    }
    return null;
  };
  if (fs.existsSync(file)) {
    const bad = await check(file);
    if (!bad) return;
    throw new Error(`${file} is there but is not the file expected (${bad}); delete it to download it again`);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const part = `${file}.part`;
  const idle = opts.idleTimeoutMs ?? 60000;
  for (let attempt = 0; ; attempt++) {
    const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
    if (opts.size !== undefined && have >= opts.size) break;
    const ctrl = new AbortController();
    let timer = setTimeout(() => ctrl.abort(), idle);
    const headers: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: ctrl.signal });
    } catch (e) {
      clearTimeout(timer);
      throw new Error(`download of ${url} failed: ${String((e as { cause?: unknown }).cause ?? (e as Error).message)}`);
    }
    if (res.status === 416 && have > 0) {
      clearTimeout(timer);
      break; // the .part already holds everything the server has
    }
    if (!res.ok || !res.body) {
      clearTimeout(timer);
      throw new Error(`download of ${url} failed: HTTP ${res.status}`);
    }
    const append = have > 0 && res.status === 206;
    const out = fs.openSync(part, append ? 'a' : 'w');
    let written = append ? have : 0;
    let lastReport = 0;
    let cut = false;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        clearTimeout(timer);
        timer = setTimeout(() => ctrl.abort(), idle);
        fs.writeSync(out, chunk);
        written += chunk.length;
        if (opts.onProgress && written - lastReport >= 64 << 20) {
          lastReport = written;
          opts.onProgress(written, opts.size);
        }
      }
    } catch {
      cut = true; // the connection broke or went idle: resume from what is on disk
    } finally {
      clearTimeout(timer);
      fs.closeSync(out);
    }
    opts.onProgress?.(written, opts.size);
    if (!cut && (opts.size === undefined || written >= opts.size)) break;
    if (attempt >= 20) throw new Error(`download of ${url} broke off ${attempt + 1} times; ${written} bytes are in ${part} (run again to resume)`);
  }
  const bad = await check(part);
  if (bad) {
    fs.rmSync(part, { force: true });
    throw new Error(`download of ${url} is not the file expected (${bad}); the partial file was deleted, run again to download it anew`);
  }
  fs.renameSync(part, file);
}
