/**
 * Loads the built-in libraries so their plugins register themselves in core's registry.
 * They are `require`d at run time, one by one, so that a lib that is missing or fails to load
 * is reported instead of taking the whole CLI down (and so this package compiles before them).
 */
export const BUILTIN_LIBS = ['@lopt/tasks', '@lopt/optimizers', '@lopt/estimators', '@lopt/training'] as const;

export interface LibLoadResult {
  loaded: string[];
  failed: Array<{ name: string; error: string }>;
}

let cached: LibLoadResult | undefined;

/** Requires every built-in lib once per process; later calls return the first result. */
export function loadBuiltinLibs(libs: readonly string[] = BUILTIN_LIBS): LibLoadResult {
  if (cached && libs === BUILTIN_LIBS) return cached;
  const result: LibLoadResult = { loaded: [], failed: [] };
  for (const name of libs) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads a lib by name at run time, failures collected
      require(name);
      result.loaded.push(name);
    } catch (e) {
      result.failed.push({ name, error: (e as Error).message.split('\n')[0] });
    }
  }
  if (libs === BUILTIN_LIBS) cached = result;
  return result;
}

/**
 * Loads the built-in libs' native kernels now (they otherwise load at their first use) and
 * returns core's one-line status, e.g. `native kernels: Core (avx512); MLPLOpt (avx512); ImageMLP (avx512)`.
 */
export function nativeKernelsStatus(): string {
  // The libs load lazily (only when asked for the status), as loadBuiltinLibs does. Core's
  // addon (the wasm elementwise kernels) comes first, as it does when initBackend('wasm') loads it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  require('@lopt/core').coreNative();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  require('@lopt/optimizers').mlpLoptNative();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  require('@lopt/tasks').imageMlpNative();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- lazy load, see above
  return require('@lopt/core').nativeStatus();
}
