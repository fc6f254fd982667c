import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { z } from 'zod';
import {
  applySetOverrides,
  parseOverrideValue,
  loadConfigFile,
  loadExperimentConfig,
  validateExperimentConfig,
  ConfigError,
  closestName,
} from '../config';

describe('parseOverrideValue', () => {
  it('parses JSON-ish values', () => {
    expect(parseOverrideValue('3')).toBe(3);
    expect(parseOverrideValue('-1.5e-3')).toBe(-0.0015);
    expect(parseOverrideValue('.5')).toBe(0.5);
    expect(parseOverrideValue('true')).toBe(true);
    expect(parseOverrideValue('false')).toBe(false);
    expect(parseOverrideValue('null')).toBeNull();
    expect(parseOverrideValue('[1, 2, "a"]')).toEqual([1, 2, 'a']);
    expect(parseOverrideValue('{"a": {"b": 1}}')).toEqual({ a: { b: 1 } });
    expect(parseOverrideValue('"007"')).toBe('007');
    expect(parseOverrideValue('foo')).toBe('foo');
    expect(parseOverrideValue('1e3x')).toBe('1e3x');
    expect(parseOverrideValue('a=b')).toBe('a=b');
    expect(parseOverrideValue('')).toBe('');
    expect(() => parseOverrideValue('[1, 2')).toThrow(ConfigError);
  });
});

describe('applySetOverrides', () => {
  it('sets nested fields on a copy', () => {
    const base = { a: { b: 1, c: 'x' }, list: [{ lr: 1 }, { lr: 2 }] };
    const out = applySetOverrides(base, ['a.b=3', 'x=foo', 'new.deep.field=true', 'list.1.lr=0.5', 'list.2={"lr": 9}', 'eq=a=b']);
    expect(out).toEqual({
      a: { b: 3, c: 'x' },
      x: 'foo',
      new: { deep: { field: true } },
      list: [{ lr: 1 }, { lr: 0.5 }, { lr: 9 }],
      eq: 'a=b',
    });
    expect(base.a.b).toBe(1); // untouched
    expect(applySetOverrides(base, [])).toEqual(base);
  });

  it('later overrides win and replace whole subtrees', () => {
    expect(applySetOverrides({ a: { b: 1 } }, ['a={"c": 2}', 'a.d=3'])).toEqual({ a: { c: 2, d: 3 } });
  });

  it('choosing another plugin drops the old plugin\'s config fields but keeps those set in the same command, in any order', () => {
    const base = { est: { name: 'TruncatedPES', config: { truncLength: 50, std: 0.01 } }, opt: { name: 'Adam', config: { learningRate: 1e-3 } } };
    expect(applySetOverrides(base, ['est.name=TruncatedES'])).toEqual({ ...base, est: { name: 'TruncatedES', config: {} } });
    expect(applySetOverrides(base, ['est.config.std=0.1', 'est.name=TruncatedES', 'est.config.unrollLength=20'])).toEqual({ ...base, est: { name: 'TruncatedES', config: { std: 0.1, unrollLength: 20 } } });
    // the same name, or a field of the config, keeps everything
    expect(applySetOverrides(base, ['est.name=TruncatedPES', 'opt.config.learningRate=0.1'])).toEqual({ ...base, opt: { name: 'Adam', config: { learningRate: 0.1 } } });
    // a later whole-object override still wins
    expect(applySetOverrides(base, ['opt.name=SGD', 'opt={"name": "Adam", "config": {"beta1": 0.5}}'])).toEqual({ ...base, opt: { name: 'Adam', config: { beta1: 0.5 } } });
    // an object that is not a plugin reference merely gets the field
    expect(applySetOverrides({ a: { name: 'x', other: 1 } }, ['a.name=y'])).toEqual({ a: { name: 'y', other: 1 } });
  });

  it('names the bad override', () => {
    expect(() => applySetOverrides({}, ['novalue'])).toThrow(/bad override 'novalue'/);
    expect(() => applySetOverrides({}, ['=3'])).toThrow(/bad override/);
    expect(() => applySetOverrides({}, ['a..b=3'])).toThrow(/bad override key 'a..b'/);
    expect(() => applySetOverrides({ a: 3 }, ['a.b=1'])).toThrow(/a is 3, not an object/);
    expect(() => applySetOverrides({ l: [1] }, ['l.5=1'])).toThrow(/l is a list of 1/);
    expect(() => applySetOverrides({}, ['__proto__.x=1'])).toThrow(/not allowed/);
  });
});

describe('loadConfigFile', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-cfg-'));
  it('reads JSON and YAML', () => {
    fs.writeFileSync(path.join(dir, 'c.json'), '{"a": {"b": 1}, "name": "x"}');
    fs.writeFileSync(path.join(dir, 'c.yaml'), 'a:\n  b: 1\nname: x\nlist: [1, 2]\n');
    expect(loadConfigFile(path.join(dir, 'c.json'))).toEqual({ a: { b: 1 }, name: 'x' });
    expect(loadConfigFile(path.join(dir, 'c.yaml'))).toEqual({ a: { b: 1 }, name: 'x', list: [1, 2] });
    fs.writeFileSync(path.join(dir, 'empty.yml'), '');
    expect(loadConfigFile(path.join(dir, 'empty.yml'))).toEqual({});
    fs.writeFileSync(path.join(dir, 'comments.yml'), '# nothing yet\n\n# still nothing\n');
    expect(loadConfigFile(path.join(dir, 'comments.yml'))).toEqual({});
    for (const [name, text] of [['null.yml', 'null\n'], ['null.json', 'null']]) {
      fs.writeFileSync(path.join(dir, name), text);
      expect(() => loadConfigFile(path.join(dir, name))).toThrow(/must hold a mapping of fields at the top level, got null/);
    }
    expect(loadExperimentConfig(path.join(dir, 'c.yaml'), ['a.b=2'])).toMatchObject({ a: { b: 2 } });
    expect(loadExperimentConfig(undefined, ['a=1'])).toEqual({ a: 1 });
  });

  it('reports unreadable, unparsable and non-mapping files by name', () => {
    expect(() => loadConfigFile(path.join(dir, 'missing.json'))).toThrow(/cannot read config file .*missing\.json/);
    fs.writeFileSync(path.join(dir, 'bad.json'), '{"a": ');
    expect(() => loadConfigFile(path.join(dir, 'bad.json'))).toThrow(/cannot parse config file .*bad\.json/);
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'a: [1, 2\nb: : :');
    expect(() => loadConfigFile(path.join(dir, 'bad.yaml'))).toThrow(/cannot parse config file .*bad\.yaml/);
    fs.writeFileSync(path.join(dir, 'list.yaml'), '- 1\n- 2\n');
    expect(() => loadConfigFile(path.join(dir, 'list.yaml'))).toThrow(/must hold a mapping.*a list/);
  });
});

describe('validateExperimentConfig', () => {
  const schema = z
    .object({
      name: z.string(),
      numSteps: z.number().int().positive().default(100),
      optimizer: z.object({ kind: z.enum(['adam', 'sgd']), learningRate: z.number().positive() }).strict(),
      estimator: z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('pes'), std: z.number() }).strict(),
        z.object({ kind: z.literal('es'), unrollLength: z.number() }).strict(),
      ]),
      tags: z.array(z.object({ key: z.string() }).strict()).optional(),
    })
    .strict();

  it('returns the parsed config with defaults', () => {
    const cfg = validateExperimentConfig(schema, {
      name: 'a',
      optimizer: { kind: 'adam', learningRate: 1e-3 },
      estimator: { kind: 'pes', std: 0.01 },
    });
    expect(cfg.numSteps).toBe(100);
  });

  it('names unknown fields with their path, allowed fields and a suggestion', () => {
    let err: ConfigError | undefined;
    try {
      validateExperimentConfig(schema, {
        name: 'a',
        numSteps: 10,
        optimizer: { kind: 'adam', learningRate: 1e-3, lerningRate: 2 },
        estimator: { kind: 'pes', std: 0.01, unrollLength: 3 },
        tags: [{ key: 'x', value: 1 }],
        numStep: 5,
      });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.issues).toEqual([
      "optimizer.lerningRate: unknown field (did you mean 'learningRate'?); allowed fields of optimizer: kind, learningRate",
      'estimator.unrollLength: unknown field; allowed fields of estimator: kind, std',
      'tags.0.value: unknown field; allowed fields of tags.0: key',
      "numStep: unknown field (did you mean 'numSteps'?); allowed fields: name, numSteps, optimizer, estimator, tags",
    ]);
    expect(err!.message).toMatch(/^invalid experiment config:\n  optimizer\.lerningRate/);
  });

  it('names bad values with the allowed ones', () => {
    let err: ConfigError | undefined;
    try {
      validateExperimentConfig(schema, {
        numSteps: -3,
        optimizer: { kind: 'adamw', learningRate: 'fast' },
        estimator: { kind: 'fullgrad' },
      });
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err!.issues).toEqual(
      expect.arrayContaining([
        'name: required field is missing (expected string)',
        expect.stringMatching(/^numSteps: .*greater than 0/),
        'optimizer.kind: "adamw" is not allowed; allowed: adam, sgd',
        'optimizer.learningRate: expected number, got string',
        'estimator.kind: not one of the allowed values: pes, es',
      ]),
    );
  });
});

describe('closestName', () => {
  it('suggests near misses only', () => {
    expect(closestName('lerning_rate', ['learning_rate', 'momentum'])).toBe('learning_rate');
    expect(closestName('zzz', ['learning_rate', 'momentum'])).toBeUndefined();
  });
});
