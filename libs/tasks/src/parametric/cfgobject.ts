/**
 * The reference's small configuration language for parametric tasks
 * (`tasks/parametric/cfgobject.py`): a `CFGObject` names a configurable and its keyword arguments,
 * which may be `CFGObject`s themselves; `LogFeature` marks a value featurised on a log scale.
 * `objectFromConfig` builds the object (the reference looks the name up in gin; lopt-ts in the
 * table `registerConfigurable` fills).
 */

/** A value to featurise on a log scale (`cfgobject.LogFeature`); `objectFromConfig` unwraps it. */
export class LogFeature<T = unknown> {
  constructor(readonly value: T) {}
}

/**
 * A value in a {@link CFGObject}'s kwargs: a nested config, a {@link LogFeature}, a scalar, null or a list of
 * these.
 */
export type CFGValue = CFGObject | LogFeature | number | string | boolean | null | CFGValue[];

/** `cfgobject.CFGObject(obj, kwargs)`. */
export class CFGObject {
  constructor(
    readonly obj: string,
    readonly kwargs: Record<string, CFGValue> = {},
  ) {}
}

/** The tree as plain JSON values: `{obj, kwargs}`, `LogFeature(v)` as `{LogFeature: v}`. */
export function cfgToPlain(cfg: CFGValue): unknown {
  if (cfg instanceof CFGObject) return { obj: cfg.obj, kwargs: Object.fromEntries(Object.entries(cfg.kwargs).map(([k, v]) => [k, cfgToPlain(v)])) };
  if (cfg instanceof LogFeature) return { LogFeature: cfgToPlain(cfg.value as CFGValue) };
  if (Array.isArray(cfg)) return cfg.map(cfgToPlain);
  return cfg;
}

type Configurable = (kwargs: Record<string, unknown>) => unknown;
const configurables = new Map<string, Configurable>();

/** Make `name` buildable by `objectFromConfig` (the reference's `@gin.configurable`). */
export function registerConfigurable(name: string, fn: Configurable): void {
  configurables.set(name, fn);
}

/** `object_from_config(cfg)`: build every nested `CFGObject` bottom-up, unwrap `LogFeature`s. */
export function objectFromConfig(cfg: CFGValue): unknown {
  if (cfg instanceof CFGObject) {
    const fn = configurables.get(cfg.obj);
    if (!fn) throw new Error(`objectFromConfig: '${cfg.obj}' is not available in lopt-ts (available: ${[...configurables.keys()].sort().join(', ')})`);
    return fn(Object.fromEntries(Object.entries(cfg.kwargs).map(([k, v]) => [k, objectFromConfig(v)])));
  }
  if (cfg instanceof LogFeature) return cfg.value;
  if (Array.isArray(cfg)) return cfg.map(objectFromConfig);
  return cfg;
}
