import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';

/** The repository root and the built CLI the e2e tests run. */
export const ROOT = path.resolve(__dirname, '../..');
export const CLI = path.join(ROOT, 'apps/runner/dist/cli.js');

/** A `lopt` child process whose stdout and stderr are captured together. */
export interface LoptProcess {
  child: ChildProcess;
  /** everything it printed so far */
  out: () => string;
  /** resolves with its exit code */
  exited: Promise<number | null>;
  /** Date.now() when it was started */
  started: number;
}

/**
 * Starts `node apps/runner/dist/cli.js --quiet ...args` with LOPT_QUIET=1 and `env` on top of this
 * process's environment, inside network namespace `netns` when given (`ip netns exec`). The child is
 * pushed onto `track` so the test's afterAll can kill what is left.
 */
export function spawnLopt(args: string[], opts: { env?: Record<string, string>; netns?: string | null; track?: ChildProcess[] } = {}): LoptProcess {
  const argv = [CLI, '--quiet', ...args];
  const options = { cwd: ROOT, env: { ...process.env, LOPT_QUIET: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const child = opts.netns ? spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...argv], options) : spawn(process.execPath, argv, options);
  opts.track?.push(child);
  let buf = '';
  child.stdout!.on('data', (d) => (buf += d));
  child.stderr!.on('data', (d) => (buf += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => buf, exited, started: Date.now() };
}

/**
 * Waits until `p` has printed `count` matches of `re` and returns them; fails with the output's tail
 * when `timeoutMs` passes or the process exits first.
 */
export async function waitForOutput(p: LoptProcess, re: RegExp, opts: { count?: number; timeoutMs?: number; pollMs?: number } = {}): Promise<RegExpMatchArray[]> {
  const { count = 1, timeoutMs = 60000, pollMs = 100 } = opts;
  const what = count === 1 ? `${re}` : `${count} x ${re}`;
  const t0 = Date.now();
  for (;;) {
    const all = [...p.out().matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g'))];
    if (all.length >= count) return all;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; output:\n${p.out().slice(-3000)}`);
    if (p.child.exitCode !== null) throw new Error(`process exited (${p.child.exitCode}) before ${what}; output:\n${p.out().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
