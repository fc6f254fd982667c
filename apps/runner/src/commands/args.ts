/** Checks of command-line values, made before a command does anything; errors name the option. */

/** An integer option in `min..max` (max: the safe integers; undefined when absent). */
export function intArg(name: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}, got '${raw}'`);
  }
  return n;
}

/** `intArg` as a commander option parser (`.option('--seeds <k>', '...', intParser('--seeds', 1))`). */
export function intParser(name: string, min: number, max?: number): (raw: string) => number {
  return (raw) => intArg(name, raw, min, max) as number;
}

/**
 * A random seed: jax.random.PRNGKey keeps its low 32 bits, so 0..2^32-1, the bound of the config's
 * `seed` (@lopt/training's MAX_SEED; not imported, so a command's options are checked before any lib loads).
 */
export const MAX_SEED = 0xffffffff;

/** A duration in seconds: a finite number `>= min` (undefined when absent). */
export function secondsArg(name: string, raw: string | undefined, min = 0): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min) throw new Error(`${name} must be a number of seconds >= ${min}, got '${raw}'`);
  return n;
}

/** `host:port` (a name, IPv4 address or [IPv6] address, and a port 1..65535). */
export function hostPortArg(name: string, raw: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw ?? '');
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) throw new Error(`${name} must be host:port (e.g. 127.0.0.1:7077), got '${raw}'`);
  return raw;
}

/** The --backend values every command takes. */
export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** commander's accumulator for a repeatable option (e.g. `--set a=1 --set b=2`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
