/**
 * Property tests (fast-check): random mutations of a valid experiment config never crash
 * validation (a clear ConfigError/RegistryError or a valid config) and, resumed on an existing
 * run, are refused before anything is built unless they are the same run; random damage to a
 * checkpoint never crashes a resume. A refused resume never changes the run folder.
 */
import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import fc from 'fast-check';
import { CheckpointError, PLUGIN_KINDS, RegistryError, SerializationError, registry } from '@lopt/core';
import { ConfigError } from '../config';
import { CheckpointManager } from '../checkpoints';
import { resolveRunConfig, resumeHash, train, validateMetaTrainingConfig, withRandomMode } from '../index';
import { folderSnapshot } from './folder_snapshot';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-robust-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every path to a value of a JSON tree, e.g. ['gradientEstimator', 'config', 'truncLength']. */
function paths(x: unknown, at: string[] = []): string[][] {
  if (x && typeof x === 'object') {
    const out: string[][] = at.length ? [at] : [];
    for (const [k, v] of Object.entries(x)) out.push(...paths(v, [...at, k]));
    return out;
  }
  return [at];
}

function setAt(x: any, p: string[], value: unknown, remove: boolean): any {
  const copy = structuredClone(x);
  let o = copy;
  for (const k of p.slice(0, -1)) o = o[k];
  if (remove) delete o[p[p.length - 1]];
  else o[p[p.length - 1]] = value;
  return copy;
}

const anyValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(Infinity, -Infinity, NaN, 1e300, 2 ** 53 + 2, -1, 0, 0.5),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

const isCleanRefusal = (e: unknown) => e instanceof ConfigError || e instanceof RegistryError;

test('every count-like field of every registered plugin (lengths, steps, sizes, numbers of things) refuses a fraction, naming the field', () => {
  const countLike = /length|steps|size|num|batch|dim|layers|seed|every|workers|count|iterations|hidden/i;
  const real = /seconds|mult|scale|rate|std|lr|decay|clip|noise|eps/i;
  const checked: string[] = [];
  const accepted: string[] = [];
  for (const kind of PLUGIN_KINDS) {
    for (const entry of registry.entries(kind)) {
      const defaults = entry.schema.safeParse({});
      if (!defaults.success) continue; // a plugin with required fields: its defaults cannot be drawn
      const base = JSON.parse(JSON.stringify(defaults.data));
      for (const p of paths(base)) {
        const key = p[p.length - 1];
        const v = p.reduce((o: any, k) => o[k], base);
        if (typeof v !== 'number' || !Number.isInteger(v) || !countLike.test(key) || real.test(key)) continue;
        const field = `${kind} ${entry.name}: ${p.join('.')}`;
        checked.push(field);
        try {
          const parsed = registry.parseConfig(kind, entry.name, setAt(base, p, v + 0.5, false));
          if (kind === 'experiment') validateMetaTrainingConfig(parsed, registry); // nested plugin configs are checked here
          accepted.push(field);
        } catch (e) {
          expect(isCleanRefusal(e)).toBe(true);
          expect((e as Error).message).toContain(key);
        }
      }
    }
  }
  expect(accepted).toEqual([]);
  expect(checked.length).toBeGreaterThan(20); // the sweep reaches the registry's plugins, not nothing
});

test('a mutated config is either valid or refused with a clear error naming a field, never a crash', () => {
  const base = JSON.parse(JSON.stringify(registry.parseConfig('experiment', 'quadratic-pes', {})));
  const all = paths(base);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: all.length - 1 }), anyValue, fc.boolean(), (i, value, remove) => {
      const mutated = setAt(base, all[i], value, remove && all[i].length > 0);
      try {
        validateMetaTrainingConfig(mutated, registry);
      } catch (e) {
        if (!isCleanRefusal(e)) throw new Error(`mutation ${all[i].join('.')}=${JSON.stringify(value)} crashed: ${(e as Error)?.stack ?? e}`);
        expect((e as Error).message.length).toBeGreaterThan(0);
      }
    }),
    { numRuns: 500, seed: 7 },
  );
});

test('a mutated config resumed on an existing run is the same run or refused with a clear error before anything is built, and the folder never changes', async () => {
  const cfg = resolveRunConfig(registry, 'quadratic-pes', { steps: 2, set: ['logging.checkpointEverySteps=1', 'tasks.0.numTasks=2'] });
  const dir = path.join(tmp, 'mutated-resume');
  await train(cfg, { experiment: 'quadratic-pes', registry, logdir: dir });
  const base = JSON.parse(JSON.stringify(cfg));
  const all = paths(base);
  const own = resumeHash(withRandomMode(cfg, false));
  const before = folderSnapshot(dir);
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: all.length - 1 }), anyValue, fc.boolean(), async (i, value, remove) => {
      const mutated = setAt(base, all[i], value, remove && all[i].length > 0);
      let valid;
      try {
        valid = validateMetaTrainingConfig(mutated, registry);
      } catch (e) {
        if (!isCleanRefusal(e)) throw new Error(`mutation ${all[i].join('.')}=${JSON.stringify(value)} crashed: ${(e as Error)?.stack ?? e}`);
        return;
      }
      // the same run (only steps, or a field set to the value it had): resuming it would just continue
      if (resumeHash(withRandomMode(valid, false)) === own) return;
      // any other change, even one whose sizes could not be built here, is refused from meta.json
      await expect(train(mutated, { experiment: 'quadratic-pes', registry, logdir: dir, resume: true })).rejects.toThrow(/was written with a different config/);
      expect(folderSnapshot(dir)).toBe(before);
      refused++;
    }),
    { numRuns: 300, seed: 5 },
  );
  expect(refused).toBeGreaterThan(10); // the property reached resumes, not only invalid configs
}, 120000);

test('a damaged checkpoint never crashes a resume, and a refused resume changes nothing in the folder', async () => {
  const cfg = resolveRunConfig(registry, 'quadratic-pes', { steps: 2, set: ['logging.checkpointEverySteps=1', 'tasks.0.numTasks=2'] });
  const pristine = path.join(tmp, 'pristine');
  await train(cfg, { experiment: 'quadratic-pes', registry, logdir: pristine });
  const latest = new CheckpointManager({ dir: pristine }).latest()!;
  const rel = path.relative(pristine, latest.path);
  let n = 0;
  const damage = fc.oneof(
    fc.record({
      kind: fc.constant('meta' as const),
      field: fc.constantFrom('step', 'elapsedTime', 'totalInnerSteps', 'rngKey', 'configHash', 'file', 'format', 'version', 'kind', 'index', 'dataStreams', 'extra'),
      value: anyValue,
    }),
    fc.record({ kind: fc.constant('tree' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
    // meta.json's own bytes (not covered by the tree's checksum), or a file of the entry gone
    fc.record({ kind: fc.constant('metaBytes' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('remove' as const), file: fc.constantFrom('meta.json', 'state.tree') }),
  );
  await fc.assert(
    fc.asyncProperty(damage, async (d) => {
      const dir = path.join(tmp, `run-${n++}`);
      fs.cpSync(pristine, dir, { recursive: true });
      const metaFile = path.join(dir, rel, 'meta.json');
      const treeFile = path.join(dir, rel, 'state.tree');
      if (d.kind === 'meta') {
        const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
        meta[d.field] = d.value;
        fs.writeFileSync(metaFile, JSON.stringify(meta));
      } else if (d.kind === 'metaBytes') {
        const bytes = fs.readFileSync(metaFile);
        bytes[d.at % bytes.length] ^= d.xor;
        fs.writeFileSync(metaFile, bytes);
      } else if (d.kind === 'remove') {
        fs.rmSync(path.join(dir, rel, d.file));
      } else {
        const bytes = fs.readFileSync(treeFile);
        if (d.kind === 'tree') bytes[d.at % bytes.length] ^= d.xor;
        fs.writeFileSync(treeFile, d.kind === 'tree' ? bytes : bytes.subarray(0, d.keep % bytes.length));
      }
      const before = folderSnapshot(dir);
      try {
        await train(cfg, { experiment: 'quadratic-pes', registry, logdir: dir, resume: true });
      } catch (e) {
        const clean = e instanceof CheckpointError || e instanceof ConfigError || e instanceof SerializationError;
        if (!clean) throw new Error(`damage ${JSON.stringify(d)} crashed the resume: ${(e as Error)?.stack ?? e}`);
        expect(folderSnapshot(dir)).toBe(before);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 100, seed: 11 },
  );
}, 120000);
