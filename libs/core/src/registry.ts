/**
 * The plugin registry: the one place where names meet code.
 *
 * A registration is a `PluginEntry`: kind, name, description, a zod schema for its config (the
 * only place its defaults are written) and a factory that builds the object from a validated
 * config and its typed collaborators (`PluginDeps`). `registry.create` validates, then builds;
 * errors name the bad field and list what is allowed. There is one way to register:
 * `registerPlugin({...})`.
 *
 * tsyringe holds the entries: one token per kind in a container. It earns its place for child
 * registries: `registry.child()` is a child container that sees every parent registration and
 * keeps its own, so a run (or a test) can add or swap plugins without touching the process-wide
 * registry, and two runs in one process share nothing. Plugins are not resolved by constructor
 * injection: a factory receives its collaborators explicitly, typed per kind, which keeps
 * construction readable and needs no decorator metadata.
 */
import 'reflect-metadata';
import { container as rootContainer, DependencyContainer } from 'tsyringe';
import { z } from 'zod';

/** The kinds of plugin the registry holds; `lopt list` shows them in this order. */
export const PLUGIN_KINDS = [
  'task',
  'task_family',
  'optimizer',
  'learned_optimizer',
  'truncation_schedule',
  'truncated_step',
  'gradient_estimator',
  'experiment',
  'population_mutator',
] as const;
/** One of `PLUGIN_KINDS`. */
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/**
 * The collaborators a plugin is built with, by kind. Kinds built from config alone have none; the
 * libs that define the kinds built around other plugins add them by declaration merging, e.g.
 * @lopt/estimators: `truncated_step: {taskFamily, learnedOptimizer, truncationSchedule}` and
 * `gradient_estimator: {truncatedStep, truncationSchedule}`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- empty until libs add to it by declaration merging
export interface PluginDeps {}

/** The kinds built with collaborators. */
export type KindWithDeps = keyof PluginDeps & PluginKind;

/** The collaborators of kind K (undefined for kinds built from config alone). */
export type DepsOf<K extends PluginKind> = K extends keyof PluginDeps ? PluginDeps[K] : undefined;

/** One registered plugin: its kind, name, config schema and factory. */
export interface PluginEntry<C = any, T = any, K extends PluginKind = PluginKind> {
  kind: K;
  name: string;
  /** One line, shown by `lopt list`. */
  description: string;
  /** The config's schema: validation and every default. */
  schema: z.ZodType<C, any, any>;
  /** Builds the object from a validated config and its collaborators. */
  create: (config: C, deps: DepsOf<K>) => T;
  /**
   * What the pipeline may rely on, instead of testing names: e.g. a gradient estimator with
   * `{ antithetic: true }` evaluates two branches per task, and `{ threadedBranches: true }` may
   * run them in worker threads.
   */
  traits?: Readonly<Record<string, boolean>>;
  /** The class it builds, when there is one (loading a module twice registers it once). */
  cls?: abstract new (...args: any[]) => T;
}

/** An unknown plugin name (the message lists the registered ones) or a conflicting registration. */
export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** One tsyringe token per kind. */
export const TOKENS: Record<PluginKind, symbol> = Object.fromEntries(
  PLUGIN_KINDS.map((k) => [k, Symbol.for(`lopt.plugin.${k}`)]),
) as Record<PluginKind, symbol>;

function checkKind(kind: string): asserts kind is PluginKind {
  if (!(PLUGIN_KINDS as readonly string[]).includes(kind)) {
    throw new RegistryError(`unknown plugin kind '${kind}'; allowed: ${PLUGIN_KINDS.join(', ')}`);
  }
}

/** Formats a zod error as "field: problem (allowed: ...)" lines. */
export function formatZodError(err: z.ZodError, prefix = ''): string {
  return err.issues
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(config)';
      let msg = `${path}: ${issue.message}`;
      const anyIssue = issue as any;
      if (anyIssue.options) msg += ` (allowed: ${anyIssue.options.join(', ')})`;
      if (issue.code === 'unrecognized_keys') msg = `${path}: unknown field(s) ${anyIssue.keys.join(', ')}`;
      return msg;
    })
    .join('; ');
}

/**
 * Every number in a config must be finite and, when it is a whole number, a safe integer: JSON
 * and YAML turn `1e400` into Infinity and `1e20` into an integer no counter can hold, which no
 * schema field wants. Returns the first offending field as "path: problem", or null.
 */
export function nonFiniteConfigField(value: unknown, path = ''): string | null {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return `${path || '(config)'}: ${value} is not a finite number`;
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return `${path || '(config)'}: ${value} is beyond the safe integer range (±${Number.MAX_SAFE_INTEGER})`;
    }
    return null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = nonFiniteConfigField(value[i], path ? `${path}.${i}` : String(i));
      if (bad) return bad;
    }
  } else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      const bad = nonFiniteConfigField(v, path ? `${path}.${k}` : k);
      if (bad) return bad;
    }
  }
  return null;
}

/**
 * A plugin's options parsed by its schema (every default filled in); a bad one is a RangeError
 * naming the field, e.g. `TruncatedPES: truncLength: must be a multiple of stepsPerJit`.
 */
export function parseOptions<S extends z.ZodTypeAny>(schema: S, opts: unknown, who: string): z.output<S> {
  const r = schema.safeParse(opts ?? {});
  if (!r.success) throw new RangeError(`${who}: ${formatZodError(r.error)}`);
  return r.data;
}

/** The plugin registry: tasks, learned optimizers, schedules, estimators and experiments by kind and name, on a tsyringe container. */
export class Registry {
  /**
   * `parent` is set by `child()`. tsyringe's `resolveAll` on a child container that has its own
   * registrations for a token returns only those, hiding the parent's, so `entries` merges the
   * parent chain explicitly.
   */
  constructor(
    readonly container: DependencyContainer = rootContainer,
    readonly parent?: Registry,
  ) {}

  /** A registry that sees this one's plugins and keeps its own additions private. */
  child(): Registry {
    return new Registry(this.container.createChildContainer(), this);
  }

  register<C, T, K extends PluginKind>(entry: PluginEntry<C, T, K>): void {
    checkKind(entry.kind);
    if (!entry.name) throw new RegistryError('a plugin needs a name');
    if (this.find(entry.kind, entry.name)) {
      throw new RegistryError(`a ${entry.kind} plugin named '${entry.name}' is already registered`);
    }
    this.container.register(TOKENS[entry.kind], { useValue: entry });
  }

  entries(kind: PluginKind): PluginEntry[] {
    checkKind(kind);
    const token = TOKENS[kind];
    if (!this.parent) {
      if (!this.container.isRegistered(token, true)) return [];
      return this.container.resolveAll<PluginEntry>(token);
    }
    const own = this.container.isRegistered(token, false) ? this.container.resolveAll<PluginEntry>(token) : [];
    return [...this.parent.entries(kind), ...own];
  }

  find(kind: PluginKind, name: string): PluginEntry | undefined {
    return this.entries(kind).find((e) => e.name === name);
  }

  get(kind: PluginKind, name: string): PluginEntry {
    const entry = this.find(kind, name);
    if (!entry) {
      const names = this.entries(kind).map((e) => e.name);
      throw new RegistryError(
        `unknown ${kind} '${name}'; allowed: ${names.length ? names.sort().join(', ') : '(none registered)'}`,
      );
    }
    return entry;
  }

  has(kind: PluginKind, name: string): boolean {
    return this.find(kind, name) !== undefined;
  }

  /** Validates a config (defaults filled in); throws a RegistryError naming the bad field. */
  parseConfig<C = any>(kind: PluginKind, name: string, config: unknown = {}): C {
    const entry = this.get(kind, name);
    const bad = nonFiniteConfigField(config);
    if (bad) throw new RegistryError(`invalid config for ${kind} '${name}': ${bad}`);
    const res = entry.schema.safeParse(config ?? {});
    if (!res.success) throw new RegistryError(`invalid config for ${kind} '${name}': ${formatZodError(res.error)}`);
    return res.data as C;
  }

  /** Validates `config` against the plugin's schema and builds it (with its collaborators, for the kinds that have them). */
  create<T = any>(kind: Exclude<PluginKind, KindWithDeps>, name: string, config?: unknown): T;
  create<T = any, K extends KindWithDeps = KindWithDeps>(kind: K, name: string, config: unknown, deps: PluginDeps[K]): T;
  create<T = any>(kind: PluginKind, name: string, config: unknown = {}, deps?: unknown): T {
    const parsed = this.parseConfig(kind, name, config);
    return (this.get(kind, name) as PluginEntry<unknown, T>).create(parsed, deps as never);
  }

  list(kind: PluginKind): Array<{ name: string; description: string }> {
    return this.entries(kind)
      .map((e) => ({ name: e.name, description: e.description }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** The process-wide registry every lib registers into when imported. */
export const registry = new Registry(rootContainer);

/**
 * Registers a plugin (in the process-wide registry unless `target` is given). Registering the same
 * name again is ignored when it is the same class (a module loaded twice), an error otherwise.
 */
export function registerPlugin<C, T, K extends PluginKind>(entry: PluginEntry<C, T, K>, target: Registry = registry): void {
  const existing = target.find(entry.kind, entry.name);
  if (existing && existing.cls && existing.cls === entry.cls) return;
  target.register(entry);
}
