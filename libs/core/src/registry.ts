/**
 * The plugin registry: the one place where names meet code.
 *
 * Each plugin kind has a tsyringe token; a registration is a `PluginEntry` (name, description,
 * zod config schema and a factory) registered under that token in a container. `registry.create`
 * validates a config against the schema and calls the factory; errors name the bad field and
 * list what is allowed. A child registry (`registry.child()`) sees every parent registration and
 * keeps its own, so two experiments in one process never share state.
 */
import 'reflect-metadata';
import { container as rootContainer, DependencyContainer } from 'tsyringe';
import { z } from 'zod';

export const PLUGIN_KINDS = [
  'task',
  'optimizer',
  'learned_optimizer',
  'truncation_schedule',
  'gradient_estimator',
  'experiment',
] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

export interface PluginEntry<C = any, T = any> {
  kind: PluginKind;
  name: string;
  /** One line, shown by `lopt list`. */
  description: string;
  schema: z.ZodType<C, any, any>;
  /** Builds the object from a validated config; `deps` carries collaborators (a task family, ...). */
  create: (config: C, deps?: any) => T;
  /** The class, when registered with the decorator. */
  cls?: new (...args: any[]) => T;
}

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

  register<C, T>(entry: PluginEntry<C, T>): void {
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
    const res = entry.schema.safeParse(config ?? {});
    if (!res.success) throw new RegistryError(`invalid config for ${kind} '${name}': ${formatZodError(res.error)}`);
    return res.data as C;
  }

  create<T = any>(kind: PluginKind, name: string, config: unknown = {}, deps?: any): T {
    const parsed = this.parseConfig(kind, name, config);
    return this.get(kind, name).create(parsed, deps) as T;
  }

  list(kind: PluginKind): Array<{ name: string; description: string }> {
    return this.entries(kind)
      .map((e) => ({ name: e.name, description: e.description }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}

/** The process-wide registry every lib registers into when imported. */
export const registry = new Registry(rootContainer);

export interface PluginOptions<C> {
  kind: PluginKind;
  name?: string;
  description: string;
  schema?: z.ZodType<C, any, any>;
  /** Defaults to `new Cls(config, deps)`. */
  create?: (config: C, deps?: any) => any;
}

/**
 * Class decorator: `@plugin({ kind: 'task', description: '...', schema })` registers the class
 * under its own name (or `name`) in the process-wide registry.
 */
export function plugin<C = any>(opts: PluginOptions<C>) {
  return function <T extends new (...args: any[]) => any>(cls: T): T {
    registerPlugin({
      kind: opts.kind,
      name: opts.name ?? cls.name,
      description: opts.description,
      schema: opts.schema ?? (z.object({}).strict() as any),
      create: opts.create ?? ((config: C, deps?: any) => new cls(config, deps)),
      cls,
    });
    return cls;
  };
}

/** Function form of `@plugin`, for factories and plain functions. Re-registering the same name is ignored
 * when it is the same class (a module loaded twice), an error otherwise. */
export function registerPlugin<C, T>(entry: PluginEntry<C, T>, target: Registry = registry): void {
  const existing = target.find(entry.kind, entry.name);
  if (existing && existing.cls && existing.cls === entry.cls) return;
  target.register(entry);
}
