import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import * as fs from 'fs';
import { createHash } from 'crypto';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose, treeLeavesWithPath } from '@lopt/core';
import { SGD } from '@lopt/optimizers';
import { z } from 'zod';
import { MetaTrainer } from '../index';
import { MetricTagger, defaultLogdir, metricTag, resolveRunConfig, resolveThreads, resumeHash, tooBigError, train } from '../train';
import { ConfigError } from '../config';
import { listEventFiles, readEventFile, SESSION_START } from '../tensorboard';
import { CheckpointManager } from '../checkpoints';
import { folderSnapshot } from './folder_snapshot';


const outerLosses = (logdir: string) => {
  const byStep = new Map<number, number>();
  for (const f of listEventFiles(logdir))
    for (const e of readEventFile(f)) for (const v of e.summary?.value ?? []) if (v.tag === 'outer/loss') byStep.set(e.step, v.simple_value!);
  return [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
};

describe('lopt run (in process)', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-run-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('metric tags drop the aggregation prefix and stay unique', () => {
    expect(metricTag('mean||_MLPImageTask/mean_loss')).toBe('_MLPImageTask/mean_loss');
    expect(metricTag('plain')).toBe('plain');
    const t = new MetricTagger();
    expect(t.tag('mean||a/x')).toBe('a/x');
    expect(t.tag('sample||a/x')).toBe('sample/a/x');
    expect(t.tag('mean||a/x')).toBe('a/x');
    expect(t.tag('none||outer/loss')).toBe('none/outer/loss');
    expect(defaultLogdir('q', new Date(2024, 0, 2, 3, 4, 5))).toBe(path.join('runs', 'q-20240102-030405'));
  });

  test('config: preset, then file, then --set, then --steps/--seed; steps do not change the resume hash', () => {
    const file = path.join(tmp, 'c.json');
    fs.writeFileSync(file, JSON.stringify({ seed: 1, steps: 9, logging: { scalarsEvery: 2 } }));
    const cfg = resolveRunConfig(registry, 'quadratic-pes', { configFile: file, set: ['seed=2', 'tasks.0.numTasks=2'], steps: '3' });
    expect([cfg.seed, cfg.steps, cfg.tasks[0].numTasks, cfg.logging.scalarsEvery, cfg.logging.histogramsEvery]).toEqual([2, 3, 2, 2, 5]);
    expect(resumeHash({ ...cfg, steps: 100 })).toBe(resumeHash(cfg));
    expect(resumeHash({ ...cfg, seed: 3 })).not.toBe(resumeHash(cfg));
    expect(() => resolveRunConfig(registry, 'nope')).toThrow(/unknown experiment 'nope'; allowed: .*quadratic-pes/);
    expect(() => resolveRunConfig(registry, 'quadratic-pes', { set: ['thetaOptimizer.name=Adamm'] })).toThrow(/thetaOptimizer\.name: unknown optimizer 'Adamm'/);
  });

  test('config: choosing another plugin in a file or with --set starts from its defaults, not the preset\'s fields', () => {
    const preset = resolveRunConfig(registry, 'quadratic-pes');
    expect(preset.thetaOptimizer.name).toBe('Adam');
    const viaSet = resolveRunConfig(registry, 'quadratic-pes', { set: ['thetaOptimizer.name=SGD'] });
    expect(viaSet.thetaOptimizer).toEqual({ name: 'SGD', config: { learningRate: 0.01 } }); // SGD's own default, not the preset's Adam rate
    const es = resolveRunConfig(registry, 'quadratic-pes', { set: ['gradientEstimator.config.std=0.1', 'gradientEstimator.name=TruncatedES'] });
    expect(es.gradientEstimator.name).toBe('TruncatedES');
    expect(es.gradientEstimator.config).toMatchObject({ std: 0.1 });
    expect(es.gradientEstimator.config).not.toHaveProperty('truncLength');
    const file = path.join(tmp, 'switch.json');
    fs.writeFileSync(file, JSON.stringify({ thetaOptimizer: { name: 'SGD' } }));
    expect(resolveRunConfig(registry, 'quadratic-pes', { configFile: file }).thetaOptimizer).toEqual({ name: 'SGD', config: { learningRate: 0.01 } });
    fs.writeFileSync(file, JSON.stringify({ thetaOptimizer: { config: { learningRate: 0.5 } } }));
    expect(resolveRunConfig(registry, 'quadratic-pes', { configFile: file }).thetaOptimizer.config).toMatchObject({ learningRate: 0.5, beta1: 0.9 });
  });

  test('a run does not leak tensors per step', async () => {
    const run = async (steps: number, name: string) => {
      const cfg = resolveRunConfig(registry, 'quadratic-pes', { steps, set: ['logging.histogramsEvery=2', 'logging.metricsEvery=2', 'logging.checkpointEverySteps=3'] });
      const before = tf.memory().numTensors;
      const r = await train(cfg, { experiment: 'quadratic-pes', registry, logdir: path.join(tmp, name) });
      expect(r.step).toBe(steps);
      return tf.memory().numTensors - before;
    };
    const short = await run(2, 'a');
    const long = await run(7, 'b');
    expect(long).toBe(short); // what stays is per trainer (task constants), not per step
    expect(await run(2, 'c')).toBe(0); // nor per run: the caches are made once, θ's first draw is freed
  });

  test('threads 2: checkpoints hold the single-thread state layout; 3 + 3 resumed steps = 6 single-thread steps', async () => {
    const cfgFor = (steps: number) => resolveRunConfig(registry, 'quadratic-pes', { steps });
    const losses = outerLosses;
    const layout = async (logdir: string) => {
      const r = await new CheckpointManager({ dir: logdir }).restoreLatest();
      const leaves = treeLeavesWithPath<unknown>(r!.state).map(([p, l]) => `${p}:${l instanceof tf.Tensor ? `${l.dtype}[${l.shape}]` : typeof l}`);
      treeDispose(r!.state);
      return leaves;
    };
    const opts = { experiment: 'quadratic-pes', registry };
    // the 10-d quadratics would stay on the main thread (MetaTrainer.threadMinParams): send them to the threads
    const savedMin = MetaTrainer.threadMinParams;
    MetaTrainer.threadMinParams = 0;
    try {
      await threadedResumeCheck();
    } finally {
      MetaTrainer.threadMinParams = savedMin;
    }
    async function threadedResumeCheck(): Promise<void> {
      const single = path.join(tmp, 'single');
      await train(cfgFor(6), { ...opts, logdir: single });
      const threaded = path.join(tmp, 'threaded');
      await train(cfgFor(3), { ...opts, logdir: threaded, threads: 2 });
      expect(await layout(threaded)).toEqual(await layout(single));
      const r = await train(cfgFor(6), { ...opts, logdir: threaded, threads: 2, resume: true });
      expect(r.startStep).toBe(3);
      expect(r.step).toBe(6);
      const a = losses(single);
      const b = losses(threaded);
      expect(b.length).toBe(6);
      b.forEach((l, i) => expect(l).toBeCloseTo(a[i], 5));
    }
    expect(resolveThreads(undefined)).toBe(1);
    expect(resolveThreads('2')).toBe(2);
    expect(resolveThreads('auto')).toBe(os.cpus().length >= 2 ? 2 : 1);
    expect(() => resolveThreads('3')).toThrow(/allowed: 1, 2, auto/);
  }, 120000);

  test('random mode: config field or JAX_THREEFRY_PARTITIONABLE; recorded in config.json and checkpoints; --resume keeps it; threads follow it', async () => {
    const opts = { experiment: 'quadratic-pes', registry };
    const cfgFor = (steps: number, set: string[] = []) => resolveRunConfig(registry, 'quadratic-pes', { steps, set });
    const readJson = (...p: string[]) => JSON.parse(fs.readFileSync(path.join(...p), 'utf8'));
    const savedMin = MetaTrainer.threadMinParams;
    try {
      const part = path.join(tmp, 'mode-part');
      await train(cfgFor(4, ['threefryPartitionable=true']), { ...opts, logdir: part });
      const legacy = path.join(tmp, 'mode-legacy');
      await train(cfgFor(4), { ...opts, logdir: legacy });
      expect(readJson(legacy, 'config.json').threefryPartitionable).toBe(false);
      expect(outerLosses(part)[0]).not.toBeCloseTo(outerLosses(legacy)[0], 3);

      // chosen by the environment, then resumed without it: the run keeps its mode
      const env = path.join(tmp, 'mode-env');
      process.env.JAX_THREEFRY_PARTITIONABLE = '1';
      try {
        await train(cfgFor(2), { ...opts, logdir: env });
      } finally {
        delete process.env.JAX_THREEFRY_PARTITIONABLE;
      }
      expect(readJson(env, 'config.json').threefryPartitionable).toBe(true);
      const ck = new CheckpointManager({ dir: env }).latest()!;
      expect(readJson(ck.path, 'meta.json').extra.threefryPartitionable).toBe(true);
      await train(cfgFor(4), { ...opts, logdir: env, resume: true });
      expect(readJson(env, 'config.json').threefryPartitionable).toBe(true);
      outerLosses(env).forEach((l, i) => expect(l).toBeCloseTo(outerLosses(part)[i], 5));

      // naming the other mode on --resume is a changed config, refused before anything is written
      await expect(train(cfgFor(6, ['threefryPartitionable=false']), { ...opts, logdir: env, resume: true })).rejects.toThrow(
        /different config[\s\S]*threefryPartitionable: true -> false/,
      );

      // worker threads draw in the run's mode too
      MetaTrainer.threadMinParams = 0;
      const threaded = path.join(tmp, 'mode-threads');
      await train(cfgFor(4, ['threefryPartitionable=true']), { ...opts, logdir: threaded, threads: 2 });
      outerLosses(threaded).forEach((l, i) => expect(l).toBeCloseTo(outerLosses(part)[i], 5));
    } finally {
      MetaTrainer.threadMinParams = savedMin;
      random.configure({ threefryPartitionable: false });
    }
  }, 120000);

  test('a θ that is not finite is never checkpointed: the newest checkpoint stays the last finite one, and the run says so', async () => {
    const logdir = path.join(tmp, 'inf-theta');
    // a meta-optimizer with an infinite learning rate (no config can ask for one) makes θ infinite
    const child = registry.child();
    // (its schema takes the preset's learningRate, which the preset's config merges in, and ignores it)
    child.register({ kind: 'optimizer', name: 'InfiniteSGD', description: 'test', schema: z.object({ learningRate: z.number().optional() }).strict(), create: () => new SGD(tf.scalar(Infinity)) });
    const cfg = resolveRunConfig(child, 'quadratic-pes', { steps: 6, set: ['thetaOptimizer.name=InfiniteSGD', 'logging.checkpointEverySteps=1', 'maxNonFiniteSteps=100'] });
    const logs: string[] = [];
    const r = await train(cfg, { experiment: 'quadratic-pes', registry: child, logdir, onEvent: (e) => e.type === 'log' && logs.push(e.message) });
    expect(logs.some((m) => /θ is not finite at step 1: no checkpoint is written/.test(m))).toBe(true);
    expect(r.lastCheckpoint).toBeNull(); // step 0's state was never saved either: nothing finite after it
    expect(new CheckpointManager({ dir: logdir }).latest()).toBeNull();
    expect(r.firstNonFiniteStep).not.toBeNull();
    // the plot draws the real loss: step 0 is its only finite point (a dot), not a line at the clip value
    const svg = fs.readFileSync(path.join(logdir, 'loss.svg'), 'utf8');
    const outerColor = /<polyline stroke="([^"]+)"|<circle [^>]*fill="([^"]+)"/.exec(svg);
    expect(outerColor).not.toBeNull();
    expect(svg).not.toMatch(new RegExp(`<polyline stroke="${outerColor![1] ?? outerColor![2]}"`));
  });

  test('allocation failures (a JS RangeError, a wasm kernel past its heap) become a ConfigError naming the sizes; other errors pass', () => {
    const WasmRuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: ErrorConstructor } }).WebAssembly.RuntimeError;
    for (const e of [new RangeError('Invalid typed array length: 4000000000'), new WasmRuntimeError('memory access out of bounds')]) {
      const mapped = tooBigError(e) as Error;
      expect(mapped).toBeInstanceOf(ConfigError);
      expect(mapped.message).toMatch(/needs more memory than this process can allocate .*tasks\.N\.numTasks/);
    }
    const other = new WasmRuntimeError('unreachable');
    expect(tooBigError(other)).toBe(other);
  });

  test('numbers that JSON or YAML turn into Infinity or unsafe integers are refused, naming the field', () => {
    // seeds: PRNGKey keeps the low 32 bits, so 2^32 and -1 would repeat the runs of seeds 0 and 2^32-1
    for (const seed of ['1e300', '4294967296', '-1']) expect(() => resolveRunConfig(registry, 'quadratic-pes', { seed })).toThrow(/seed: must be in 0\.\.4294967295/);
    expect(resolveRunConfig(registry, 'quadratic-pes', { seed: '4294967295' }).seed).toBe(4294967295);
    expect(() => resolveRunConfig(registry, 'quadratic-pes', { steps: '1e20' })).toThrow(/steps: 100000000000000000000 is beyond the safe integer range/);
    expect(() => resolveRunConfig(registry, 'quadratic-pes', { set: ['steps=9007199254740993'] })).toThrow(/steps: 9007199254740992 is beyond/);
    expect(() => resolveRunConfig(registry, 'quadratic-pes', { set: ['thetaOptimizer.config.learningRate=1e400'] })).toThrow(
      /thetaOptimizer\.config\.learningRate: Infinity is not a finite number/,
    );
  });

  test('resume checks before it writes: a bad meta.json, a step past --steps, another key, another experiment\'s state are refused and the folder stays byte-identical; stray checkpoint_<digits> names are not checkpoints; a finished run resumed writes nothing', async () => {
    const opts = { experiment: 'quadratic-pes', registry };
    const dir = path.join(tmp, 'resume-checks');
    await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 4 }), { ...opts, logdir: dir });
    const snapshot = () => folderSnapshot(dir);
    const ck = new CheckpointManager({ dir }).latest()!;
    const metaFile = path.join(ck.path, 'meta.json');
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    const withMeta = async (edit: Record<string, unknown>, steps: number, re: RegExp) => {
      fs.writeFileSync(metaFile, JSON.stringify({ ...meta, ...edit }));
      const before = snapshot();
      await expect(train(resolveRunConfig(registry, 'quadratic-pes', { steps }), { ...opts, logdir: dir, resume: true })).rejects.toThrow(re);
      expect(snapshot()).toBe(before);
    };
    await withMeta({ step: 1000 }, 6, /at step 1000, past steps=6; resume with --steps 1000 or more/);
    await withMeta({}, 2, /at step 4, past steps=2/);
    await withMeta({ step: -1 }, 6, /meta\.json step is -1 \(a non-negative integer expected\)/);
    await withMeta({ step: 5.5 }, 6, /meta\.json step is 5\.5/);
    await withMeta({ elapsedTime: 'x' }, 6, /meta\.json elapsedTime is "x"/);
    await withMeta({ rngKey: [1, 2] }, 6, /its rngKey \[1,2\] is not the key .* this config derives for step 4/);
    fs.writeFileSync(metaFile, JSON.stringify(meta));
    // another experiment's state (4 tasks where this config has 2)
    const before = snapshot();
    await expect(train(resolveRunConfig(registry, 'quadratic-pes', { steps: 6, set: ['tasks.0.numTasks=2'] }), { ...opts, logdir: dir, resume: true })).rejects.toThrow(
      /different config/,
    );
    expect(snapshot()).toBe(before);
    // a state.tree from another experiment (2 tasks where this config builds 4), its checksum made to match
    const other = path.join(tmp, 'resume-checks-other');
    await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 2, set: ['tasks.0.numTasks=2'] }), { ...opts, logdir: other });
    const otherTree = fs.readFileSync(path.join(new CheckpointManager({ dir: other }).latest()!.path, 'state.tree'));
    const treeFile = path.join(ck.path, 'state.tree');
    const ownTree = fs.readFileSync(treeFile);
    fs.writeFileSync(treeFile, otherTree);
    fs.writeFileSync(metaFile, JSON.stringify({ ...meta, file: { ...meta.file, bytes: otherTree.length, sha256: createHash('sha256').update(otherTree).digest('hex') } }));
    const before2 = snapshot();
    await expect(train(resolveRunConfig(registry, 'quadratic-pes', { steps: 6 }), { ...opts, logdir: dir, resume: true })).rejects.toThrow(
      /its state is not what this config builds \(another experiment's checkpoint\?\): expected '.*\[4,/,
    );
    expect(snapshot()).toBe(before2);
    fs.writeFileSync(treeFile, ownTree);
    fs.writeFileSync(metaFile, JSON.stringify(meta));
    // stray folders (an index beyond safe integers, leading zeros) are not taken for checkpoints
    fs.mkdirSync(path.join(dir, 'checkpoints', 'checkpoint_99999999999999999999'));
    fs.cpSync(path.join(dir, 'checkpoints', 'checkpoint_0'), path.join(dir, 'checkpoints', 'checkpoint_0007'), { recursive: true });
    const r = await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 6 }), { ...opts, logdir: dir, resume: true });
    expect(r).toMatchObject({ startStep: 4, step: 6 });
    // resuming a finished run with the same steps trains nothing and writes nothing
    const logs: string[] = [];
    const before3 = snapshot();
    const again = await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 6 }), { ...opts, logdir: dir, resume: true, onEvent: (e) => e.type === 'log' && logs.push(e.message) });
    expect(again).toMatchObject({ startStep: 6, step: 6, interrupted: false });
    expect(again.finalLoss).toBe(r.finalLoss);
    expect(logs).toEqual(['the run is already at step 6 of 6: nothing to do, nothing written (raise --steps to continue it)']);
    expect(snapshot()).toBe(before3);
    // a folder holding only a stray is neither resumed nor overwritten
    const strayOnly = path.join(tmp, 'stray-only');
    fs.mkdirSync(path.join(strayOnly, 'checkpoints', 'checkpoint_99999999999999999999'), { recursive: true });
    const cfg2 = resolveRunConfig(registry, 'quadratic-pes', { steps: 2 });
    await expect(train(cfg2, { ...opts, logdir: strayOnly, resume: true })).rejects.toThrow(
      /no checkpoint to resume from .*; checkpoint_99999999999999999999 is not a checkpoint a run writes/,
    );
    await expect(train(cfg2, { ...opts, logdir: strayOnly })).rejects.toThrow(/checkpoint_99999999999999999999 is not a checkpoint a run writes .*remove it or choose another --logdir/);
    expect(fs.readdirSync(strayOnly)).toEqual(['checkpoints']);
  });

  test('durability: the records of steps before a checkpoint are on disk when it appears; a resume writes SessionLog.START at its step', async () => {
    const opts = { experiment: 'quadratic-pes', registry };
    const dir = path.join(tmp, 'durable');
    const seenAtCheckpoint: Array<[number, number[]]> = [];
    await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 4, set: ['logging.checkpointEverySteps=2'] }), {
      ...opts,
      logdir: dir,
      onEvent: (e) => {
        if (e.type === 'checkpoint') {
          const steps = listEventFiles(dir).flatMap((f) => readEventFile(f)).filter((ev) => ev.summary?.value.some((v) => v.tag === 'outer/loss')).map((ev) => ev.step);
          seenAtCheckpoint.push([e.step, steps]);
        }
      },
    });
    // outer/loss is logged at the 0-based step index; checkpoint `s` follows step index s-1
    expect(seenAtCheckpoint).toEqual([
      [2, [0, 1]],
      [4, [0, 1, 2, 3]],
    ]);
    await train(resolveRunConfig(registry, 'quadratic-pes', { steps: 6, set: ['logging.checkpointEverySteps=2'] }), { ...opts, logdir: dir, resume: true });
    const starts = listEventFiles(dir).flatMap((f) => readEventFile(f)).filter((ev) => ev.session_log?.status === SESSION_START);
    expect(starts.map((ev) => ev.step)).toEqual([4]);
  });
});
