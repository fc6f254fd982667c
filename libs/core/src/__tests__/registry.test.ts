import { z } from 'zod';
import { PLUGIN_KINDS, Registry, RegistryError, registerPlugin, registry } from '../index';

class Quad {
  constructor(readonly config: { dim: number; scale: number }) {}
}

function entry(name: string, description = `${name} task`) {
  return {
    kind: 'task' as const,
    name,
    description,
    schema: z.object({ dim: z.number().int().positive().default(10), scale: z.number().default(1) }).strict(),
    create: (c: { dim: number; scale: number }) => new Quad(c),
  };
}

describe('registry', () => {
  test('create fills defaults and validates', () => {
    const r = registry.child();
    r.register(entry('quad'));
    const q = r.create<Quad>('task', 'quad');
    expect(q).toBeInstanceOf(Quad);
    expect(q.config).toEqual({ dim: 10, scale: 1 });
    expect(r.create<Quad>('task', 'quad', { dim: 3 }).config).toEqual({ dim: 3, scale: 1 });
    expect(r.parseConfig('task', 'quad', { scale: 2 })).toEqual({ dim: 10, scale: 2 });
  });

  test('unknown name lists the registered names', () => {
    const r = new Registry().child();
    r.register(entry('zeta'));
    r.register(entry('alpha'));
    expect(() => r.create('task', 'nope')).toThrow(RegistryError);
    expect(() => r.create('task', 'nope')).toThrow(/unknown task 'nope'; allowed: .*alpha, .*zeta/);
    expect(() => r.get('optimizer', 'sgd_child_only')).toThrow(/unknown optimizer/);
  });

  test('bad config names the field', () => {
    const r = registry.child();
    r.register(entry('quad'));
    expect(() => r.create('task', 'quad', { dim: -1 })).toThrow(/invalid config for task 'quad': dim:/);
    expect(() => r.create('task', 'quad', { dim: 'x' })).toThrow(/dim: Expected number/);
    expect(() => r.create('task', 'quad', { dimm: 3 })).toThrow(/unknown field\(s\) dimm/);
    const withEnum = registry.child();
    withEnum.register({ ...entry('e'), schema: z.object({ mode: z.enum(['a', 'b']) }) } as unknown as ReturnType<typeof entry>);
    expect(() => withEnum.create('task', 'e', { mode: 'c' })).toThrow(/mode: .*\(allowed: a, b\)/);
  });

  test('unknown kind and duplicate names are errors', () => {
    const r = registry.child();
    expect(() => r.register({ ...entry('x'), kind: 'widget' as any })).toThrow(/unknown plugin kind 'widget'; allowed: task, task_family, optimizer/);
    r.register(entry('dup'));
    expect(() => r.register(entry('dup'))).toThrow(/already registered/);
    expect(PLUGIN_KINDS).toContain('gradient_estimator');
  });

  test('child registries see the parent but not each other', () => {
    const parent = registry.child();
    parent.register(entry('shared_task'));
    const c1 = parent.child();
    const c2 = parent.child();
    c1.register(entry('only_c1'));
    expect(c1.has('task', 'shared_task')).toBe(true);
    expect(c1.has('task', 'only_c1')).toBe(true);
    expect(c2.has('task', 'only_c1')).toBe(false);
    expect(parent.has('task', 'only_c1')).toBe(false);
    expect(registry.has('task', 'only_c1')).toBe(false);
    expect(registry.has('task', 'shared_task')).toBe(false);
    c2.register(entry('only_c1', 'a different one'));
    expect(c2.get('task', 'only_c1').description).toBe('a different one');
  });

  test('list is sorted with descriptions', () => {
    const r = new Registry().child();
    r.register(entry('b_task', 'B'));
    r.register(entry('a_task', 'A'));
    const names = r.list('task').map((e) => e.name);
    const sorted = [...names].sort((x, y) => x.localeCompare(y));
    expect(names).toEqual(sorted);
    expect(r.list('task')).toEqual(expect.arrayContaining([{ name: 'a_task', description: 'A' }, { name: 'b_task', description: 'B' }]));
    expect(r.list('experiment').filter((e) => e.name.startsWith('a_task'))).toEqual([]);
  });

  test('registerPlugin is idempotent for the same class, an error for another with the same name; a child keeps its own', () => {
    const target = registry.child();
    class CoreTestOpt {
      constructor(readonly config: { lr: number }) {}
    }
    const e = { kind: 'optimizer' as const, name: 'CoreTestOpt', description: 'test', schema: z.object({ lr: z.number().default(0.1) }), create: (c: { lr: number }) => new CoreTestOpt(c), cls: CoreTestOpt };
    registerPlugin(e, target);
    expect(() => registerPlugin(e, target)).not.toThrow();
    expect(target.create<CoreTestOpt>('optimizer', 'CoreTestOpt').config).toEqual({ lr: 0.1 }); // the default comes from the schema
    expect(registry.has('optimizer', 'CoreTestOpt')).toBe(false);
    registerPlugin(entry('fn_task'), target);
    expect(target.has('task', 'fn_task')).toBe(true);
    expect(() => registerPlugin(entry('fn_task'), target)).toThrow(/already registered/);
  });

  test('the kinds: tasks and task families apart, truncated steps, and the rest', () => {
    expect([...PLUGIN_KINDS]).toEqual(['task', 'task_family', 'optimizer', 'learned_optimizer', 'truncation_schedule', 'truncated_step', 'gradient_estimator', 'experiment', 'population_mutator']);
  });
});
