/**
 * Experiment configuration helpers: config files (JSON or YAML), `--set a.b=3` overrides and
 * validation against a strict zod schema with errors that name the field path, the allowed
 * values and, for a misspelt field, the closest known one.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseDocument } from 'yaml';
import { z } from 'zod';

/**
 * An invalid experiment config, config file or override; `issues` lists every problem (each naming the field
 * path).
 */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[] = [message],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Parses an override value: numbers, true/false, null, JSON arrays/objects/strings; anything else is a string. */
export function parseOverrideValue(raw: string): Json {
  const s = raw.trim();
  if (s === '') return '';
  if (NUMBER_RE.test(s)) return Number(s);
  if (s === 'true' || s === 'false') return s === 'true';
  if (s === 'null') return null;
  if (/^[[{"]/.test(s)) {
    try {
      return JSON.parse(s);
    } catch (e) {
      if (s.startsWith('"')) return raw;
      throw new ConfigError(`cannot parse '${raw}' as JSON: ${(e as Error).message}`);
    }
  }
  return raw;
}

function splitPath(key: string): string[] {
  const parts = key.split('.');
  if (!key || parts.some((p) => p === '')) throw new ConfigError(`bad override key '${key}': use dotted field names like a.b.c`);
  return parts;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Applies `key.path=value` overrides to a deep copy of `config`, in order. Intermediate objects
 * are created as needed; a numeric segment indexes into an existing array. Setting the `name` of a
 * `{name, config}` plugin reference to another plugin empties its `config` (keeping what this
 * command set there), so the new plugin starts from its own defaults.
 */
export function applySetOverrides<T extends Record<string, any>>(config: T, overrides: readonly string[] = []): T {
  const out: any = structuredClone(config ?? {});
  const applied: Array<{ keys: string[]; value: Json; ov: string }> = [];
  for (const ov of overrides) {
    const eq = ov.indexOf('=');
    if (eq <= 0) throw new ConfigError(`bad override '${ov}': expected key.path=value`);
    const keys = splitPath(ov.slice(0, eq).trim());
    for (const k of keys) if (FORBIDDEN_KEYS.has(k)) throw new ConfigError(`bad override '${ov}': '${k}' is not allowed as a field name`);
    const value = parseOverrideValue(ov.slice(eq + 1));
    const node = parentOf(out, keys, ov);
    const last = keys[keys.length - 1];
    if (last === 'name' && isPluginRef(node) && node.name !== value) {
      // Choosing another plugin (`gradientEstimator.name=TruncatedES`) starts from that plugin's
      // defaults: the old plugin's config fields are dropped, except those this command set.
      node.config = {};
      setAt(out, keys, value, ov);
      const under = [...keys.slice(0, -1), 'config'];
      for (const a of applied) if (under.every((k, i) => a.keys[i] === k) && a.keys.length > under.length) setAt(out, a.keys, structuredClone(a.value), a.ov);
    } else {
      setAt(out, keys, value, ov);
    }
    applied.push({ keys, value, ov });
  }
  return out;
}

/** The object that holds `keys`' last segment, creating intermediate objects as needed. */
function parentOf(root: any, keys: string[], ov: string): any {
  let node: any = root;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    const next = Array.isArray(node) ? node[arrayIndex(node, k, ov, keys, i)] : node[k];
    if (next === undefined || next === null) {
      node[k] = {};
    } else if (typeof next !== 'object') {
      throw new ConfigError(`bad override '${ov}': ${keys.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not an object`);
    }
    node = Array.isArray(node) ? node[Number(k)] : node[k];
  }
  return node;
}

function setAt(root: any, keys: string[], value: Json, ov: string): void {
  const node = parentOf(root, keys, ov);
  const last = keys[keys.length - 1];
  if (Array.isArray(node)) node[arrayIndex(node, last, ov, keys, keys.length - 1, true)] = value;
  else node[last] = value;
}

/** A `{name, config}` reference to a registered plugin, as experiment configs hold them. */
export function isPluginRef(x: unknown): x is { name: string; config: Record<string, unknown> } {
  const o = x as Record<string, unknown>;
  return typeof o === 'object' && o !== null && typeof o.name === 'string' && typeof o.config === 'object' && o.config !== null && !Array.isArray(o.config);
}

function arrayIndex(arr: unknown[], k: string, ov: string, keys: string[], i: number, allowAppend = false): number {
  const n = Number(k);
  if (!/^\d+$/.test(k) || n > arr.length || (n === arr.length && !allowAppend)) {
    throw new ConfigError(`bad override '${ov}': ${keys.slice(0, i).join('.')} is a list of ${arr.length}; '${k}' is not an index into it`);
  }
  return n;
}

/** Reads a JSON (.json) or YAML (.yaml/.yml, or anything else that parses as YAML) config file; the top level must be a mapping. */
export function loadConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
  }
  const ext = path.extname(file).toLowerCase();
  let data: unknown;
  try {
    if (ext === '.json') data = JSON.parse(text);
    else {
      const doc = parseDocument(text, { prettyErrors: true });
      if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('; '));
      data = doc.toJS();
    }
  } catch (e) {
    throw new ConfigError(`cannot parse config file ${file}: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) {
    // an empty file (or comments only) sets nothing; an explicit null is a mistake
    if (/^\s*(#[^\n]*)?(\n\s*(#[^\n]*)?)*$/.test(text)) return {};
    throw new ConfigError(`config file ${file} must hold a mapping of fields at the top level, got null`);
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`config file ${file} must hold a mapping of fields at the top level, got ${Array.isArray(data) ? 'a list' : typeof data}`);
  }
  return data as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Strips optional/default/nullable/effects wrappers. */
function unwrap(s: z.ZodTypeAny): z.ZodTypeAny {
  for (let i = 0; i < 20; i++) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else if (s instanceof z.ZodLazy) s = s.schema;
    else if (s instanceof z.ZodPipeline) s = s._def.in;
    else if (s instanceof z.ZodBranded) s = s.unwrap();
    else if (s instanceof z.ZodCatch) s = s._def.innerType;
    else if (s instanceof z.ZodReadonly) s = s._def.innerType;
    else break;
  }
  return s;
}

/** The sub-schema at `p` (following the data to pick a discriminated union's branch), if it can be found. */
function schemaAt(schema: z.ZodTypeAny, data: unknown, p: ReadonlyArray<string | number>): z.ZodTypeAny | undefined {
  let s: z.ZodTypeAny | undefined = schema;
  let d: any = data;
  for (const key of p) {
    s = s ? unwrap(s) : undefined;
    if (!s) return undefined;
    if (s instanceof z.ZodDiscriminatedUnion) s = pickBranch(s, d);
    if (s instanceof z.ZodObject) s = s.shape[key as string];
    else if (s instanceof z.ZodArray) s = s.element;
    else if (s instanceof z.ZodRecord) s = s.valueSchema;
    else if (s instanceof z.ZodTuple) s = s.items[key as number];
    else return undefined;
    d = d && typeof d === 'object' ? d[key] : undefined;
  }
  s = s ? unwrap(s) : undefined;
  if (s instanceof z.ZodDiscriminatedUnion) s = pickBranch(s, d);
  return s;
}

function pickBranch(s: z.ZodDiscriminatedUnion<string, any>, d: any): z.ZodTypeAny | undefined {
  const tag = d && typeof d === 'object' ? d[s.discriminator] : undefined;
  return s.optionsMap.get(tag);
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

/** The closest of `candidates` to `name`, when it is close enough to be a likely typo. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function fieldName(prefix: string, p: ReadonlyArray<string | number>): string {
  const parts = [prefix, ...p.map(String)].filter(Boolean);
  return parts.length ? parts.join('.') : '(top level)';
}

/** One readable line per zod issue: field path, problem, allowed values / fields, and a suggestion for typos. */
export function describeConfigIssues(schema: z.ZodTypeAny, data: unknown, error: z.ZodError, prefix = ''): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    const where = fieldName(prefix, issue.path);
    switch (issue.code) {
      case 'unrecognized_keys': {
        const obj = schemaAt(schema, data, issue.path);
        const known = obj instanceof z.ZodObject ? Object.keys(obj.shape) : [];
        for (const key of issue.keys) {
          const full = fieldName(prefix, [...issue.path, key]);
          const hint = closestName(key, known);
          lines.push(
            `${full}: unknown field` +
              (hint ? ` (did you mean '${hint}'?)` : '') +
              (known.length ? `; allowed fields${issue.path.length ? ` of ${where}` : ''}: ${known.join(', ')}` : ''),
          );
        }
        break;
      }
      case 'invalid_enum_value':
        lines.push(`${where}: ${JSON.stringify(issue.received)} is not allowed; allowed: ${issue.options.map(String).join(', ')}`);
        break;
      case 'invalid_union_discriminator':
        lines.push(`${where}: not one of the allowed values: ${issue.options.map(String).join(', ')}`);
        break;
      case 'invalid_literal':
        lines.push(`${where}: must be ${JSON.stringify(issue.expected)}`);
        break;
      case 'invalid_type':
        lines.push(
          issue.received === 'undefined'
            ? `${where}: required field is missing (expected ${issue.expected})`
            : `${where}: expected ${issue.expected}, got ${issue.received}`,
        );
        break;
      default:
        lines.push(`${where}: ${issue.message}`);
    }
  }
  return lines;
}

/**
 * Validates `config` against `schema` (use `.strict()` objects so unknown fields are reported) and
 * returns the parsed value with defaults filled in; throws a ConfigError listing every problem.
 */
export function validateExperimentConfig<S extends z.ZodTypeAny>(schema: S, config: unknown, what = 'experiment config'): z.infer<S> {
  const res = schema.safeParse(config);
  if (res.success) return res.data;
  const lines = describeConfigIssues(schema, config, res.error);
  throw new ConfigError(`invalid ${what}:\n  ${lines.join('\n  ')}`, lines);
}

/** Config from an optional file plus `--set` overrides (overrides win). */
export function loadExperimentConfig(file: string | undefined, overrides: readonly string[] = []): Record<string, unknown> {
  return applySetOverrides(file ? loadConfigFile(file) : {}, overrides);
}
