import '@lopt/tasks';
import '@lopt/optimizers';
import '@lopt/estimators';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { registry, toHostTree } from '@lopt/core';
import { MetaTrainer, distributed, listEventFiles, readEventFile } from '@lopt/training';
import * as grpc from '@grpc/grpc-js';
import { GrpcLearnerClient, startGrpcServer } from '../distributed';

const { AsyncGradientBuffer, SyncGradientSlots, batchMetrics, buildExperiment, checkWireTree, codec, DistributedLearner, InProcessTransport, requireToken, runWorker, RpcError, Status } =
  distributed;
type WireTree = distributed.WireTree;
type GradientRequest = distributed.GradientRequest;
type LearnerHandler = distributed.LearnerHandler;

const SET = ['tasks.0.numTasks=2'];
const quiet = () => undefined;

describe('AsyncGradientBuffer (staleness, bounded buffer)', () => {
  test('accepts 0 <= current - step <= staleness, drops stale and future ones', () => {
    const b = new AsyncGradientBuffer<string>({ batchSize: 2, staleness: 1, current: 5 });
    expect(b.put(0, 5, 'a')).toBe('accepted');
    expect(b.put(1, 4, 'b')).toBe('accepted');
    expect(b.put(2, 3, 'c')).toBe('stale');
    expect(b.put(3, 6, 'd')).toBe('future');
    expect(b.removedStaleTotal).toBe(1);
    expect(b.ready()).toBe(true);
    const batch = b.take();
    expect(batch.entries.map((e) => e.grad)).toEqual(['a', 'b']);
    expect(batch.bufferSize).toBe(2);
    expect(b.size()).toBe(0);
    expect(batchMetrics(6, batch)).toEqual({ avg_staleness: 1.5, max_staleness: 2, buffer_size: 2, unique_workers: 2 });
  });

  test('buffer holds 5 x batch size; further gradients are dropped, not queued', () => {
    const b = new AsyncGradientBuffer<number>({ batchSize: 2, staleness: 0 });
    for (let i = 0; i < 10; i++) expect(b.put(i % 3, 0, i)).toBe('accepted');
    expect(b.put(0, 0, 99)).toBe('full');
    expect(b.droppedTotal).toBe(1);
    expect(b.size()).toBe(10);
    expect(b.take().entries.map((e) => e.grad)).toEqual([0, 1]); // FIFO
  });

  test('advance purges gradients that became stale and counts them', () => {
    const b = new AsyncGradientBuffer<number>({ batchSize: 3, staleness: 1 });
    b.put(0, 0, 1);
    b.advance(1);
    b.put(1, 1, 2);
    b.put(1, 0, 3);
    expect(b.size()).toBe(3);
    expect(b.ready()).toBe(true);
    const removed = b.advance(2);
    expect(removed.map((e) => e.grad)).toEqual([1, 3]);
    expect(b.removedStaleTotal).toBe(2);
    expect(b.size()).toBe(1);
    expect(b.ready()).toBe(false);
    expect(() => b.take()).toThrow(/valid gradients/);
  });

  test('staleness 0 with 8 puts and batch 5 (reference distributed_test)', () => {
    const b = new AsyncGradientBuffer<number>({ batchSize: 5, staleness: 0 });
    for (let i = 0; i < 8; i++) b.put(i, 0, i);
    expect(b.take().entries).toHaveLength(5);
    expect(b.size()).toBe(3);
  });
});

describe('SyncGradientSlots (one gradient per worker per step)', () => {
  test('only step == current; a worker that submitted waits for the next step', () => {
    const s = new SyncGradientSlots<string>({ numWorkers: 2, current: 3 });
    expect(s.canGetWeights(0)).toBe(true);
    expect(s.put(0, 2, 'old')).toBe('stale');
    expect(s.put(0, 4, 'new')).toBe('future');
    expect(s.put(0, 3, 'a')).toBe('accepted');
    expect(s.canGetWeights(0)).toBe(false);
    expect(s.put(0, 3, 'again')).toBe('duplicate');
    expect(s.put(5, 3, 'x')).toBe('unknown_worker');
    expect(s.ready()).toBe(false);
    expect(s.put(1, 3, 'b')).toBe('accepted');
    expect(s.ready()).toBe(true);
    expect(s.take().entries.map((e) => e.grad)).toEqual(['a', 'b']);
    // still waiting while the learner updates: no second gradient for step 3
    expect(s.canGetWeights(0)).toBe(false);
    expect(s.put(0, 3, 'again')).toBe('duplicate');
    s.advance(4);
    expect(s.canGetWeights(0)).toBe(true);
    expect(s.put(1, 3, 'late')).toBe('stale');
  });
});

/** A wire tree with these float32 leaves (path, shape, values), as core's host trees hold them. */
function wireTree(entries: Array<[string, number[], number[] | Float32Array]>): WireTree {
  const t = toHostTree(Object.fromEntries(entries.map(([p]) => [p, 0]))); // the structure: one leaf per path
  return { ...t, leaves: entries.map(([, shape, d]) => ({ kind: 'tensor', dtype: 'float32', shape, data: Float32Array.from(d) })) };
}

describe('protocol', () => {
  const tree: WireTree = toHostTree({ a: { b: tf.tensor([[1, 2], [3, -0.5]]) }, c: tf.scalar(7) });
  test('protobuf round trip of a gradient (float32 bytes, int64 shapes, metrics map)', () => {
    const req: GradientRequest = {
      experiment: { name: 'e', configHash: 'h' },
      workerId: 3,
      step: 12,
      thetaGrads: tree,
      meanLoss: 1.25,
      metrics: { 'mean||x': 2 },
      genId: 'g',
    };
    const bytes = codec.gradientRequest.encode(req);
    const back = codec.gradientRequest.decode(bytes);
    expect(back).toEqual(req);
    expect(back.thetaGrads.paths).toEqual(['a/b', 'c']);
    expect((back.thetaGrads.leaves[0] as any).data).toBeInstanceOf(Float32Array);
    // the tree travels in the checkpoint file format, CRC included: a changed byte is refused
    const i = bytes.indexOf(Buffer.from('LOPTTREE')) + 100;
    const bad = Buffer.from(bytes);
    bad[i] ^= 0xff;
    expect(() => codec.gradientRequest.decode(bad)).toThrow(expect.objectContaining({ code: Status.INVALID_ARGUMENT }));
  });

  test('checkWireTree names wrong paths, shapes and sizes', () => {
    const sig = new Map([
      ['a/b', [2, 2]],
      ['c', []],
    ]);
    expect(checkWireTree(tree, sig, 'g')).toBeNull();
    expect(checkWireTree(wireTree([['a/b', [2, 2], [1, 2, 3, 4]]]), sig, 'g')).toMatch(/'c' is missing/);
    expect(checkWireTree(wireTree([['a/b', [4], [1, 2, 3, 4]], ['c', [], [7]]]), sig, 'g')).toMatch(/shape \[4\], expected \[2,2\]/);
    expect(checkWireTree(wireTree([['a/b', [2, 2], [1, 2, 3]], ['c', [], [7]]]), sig, 'g')).toMatch(/3 values/);
    expect(checkWireTree(wireTree([['a/b', [2, 2], [1, 2, 3, 4]], ['c', [], [7]], ['zz', [], [1]]]), sig, 'g')).toMatch(/unexpected entry 'zz'/);
  });
});

describe('learner + workers over the in-process transport', () => {
  test('async learner, batch 2, two workers: reaches its steps with gradients from both', async () => {
    const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps: 4 });
    const learner = new DistributedLearner({ spec, registry, mode: 'async', batchSize: 2, staleness: 1, log: quiet, lingerSeconds: 1 });
    await learner.init();
    const workers = [0, 1].map((id) =>
      runWorker({ spec, registry, workerId: id, client: new InProcessTransport(learner), log: quiet }),
    );
    const result = await learner.run();
    const [w0, w1] = await Promise.all(workers);
    learner.close();
    expect(result.step).toBe(4);
    expect(result.losses).toHaveLength(4);
    expect(result.workers).toEqual([0, 1]);
    expect(w0.reason).toBe('finished');
    expect(w0.steps.length + w1.steps.length).toBeGreaterThanOrEqual(8);
  });

  test('sync learner with 1 worker reproduces MetaTrainer.step losses for the same seed', async () => {
    const steps = 4;
    const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps });
    // single machine
    const trainer = new MetaTrainer(spec.config, registry);
    let state = await trainer.init();
    const ref: number[] = [];
    for (let i = 0; i < steps; i++) {
      const [next, r] = await trainer.step(state, i, { withMetrics: i % spec.config.logging.metricsEvery === 0 });
      state = next;
      ref.push(r.loss);
    }
    // learner + worker (the worker with one thread, then with its PES branches in two threads)
    for (const threads of [1, 2]) {
      const learner = new DistributedLearner({ spec, registry, mode: 'sync', numWorkers: 1, log: quiet, lingerSeconds: 1 });
      await learner.init();
      const worker = runWorker({ spec, registry, workerId: 0, client: new InProcessTransport(learner), log: quiet, threads });
      const result = await learner.run();
      const w = await worker;
      learner.close();
      expect(w.steps).toEqual([0, 1, 2, 3]);
      expect(result.losses).toHaveLength(steps);
      result.losses.forEach((l, i) => expect(l).toBeCloseTo(ref[i], 5));
    }
  }, 60000);

  test('bad messages are rejected with clear statuses and counted, never applied', async () => {
    const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps: 2 });
    const learner = new DistributedLearner({ spec, registry, mode: 'async', log: quiet });
    await learner.init();
    const client = new InProcessTransport(learner);
    const exp = { name: spec.name, configHash: spec.hash };
    const ww = await client.getWorkerWeights({ experiment: exp, workerId: 0 });
    expect(ww.step).toBe(0);
    const leavesOf = (w: WireTree) => w.leaves as Array<{ shape: number[]; data: Float32Array }>;
    const good = wireTree(ww.theta.paths.map((p, i) => [p, leavesOf(ww.theta)[i].shape, new Float32Array(leavesOf(ww.theta)[i].data.length)]));
    const put = (over: Partial<GradientRequest>) =>
      client.putGradient({ experiment: exp, workerId: 0, step: 0, thetaGrads: good, meanLoss: 1, metrics: {}, genId: ww.genId, ...over });
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'ok';
      } catch (e) {
        expect(e).toBeInstanceOf(RpcError);
        return (e as InstanceType<typeof RpcError>).code;
      }
    };
    expect(await code(client.getWorkerWeights({ experiment: { name: spec.name, configHash: 'other' }, workerId: 0 }))).toBe(Status.FAILED_PRECONDITION);
    expect(await code(put({ experiment: { name: 'seed-single-machine', configHash: spec.hash } }))).toBe(Status.FAILED_PRECONDITION);
    const wrongShape = wireTree(good.paths.map((p, i) => [p, i === 0 ? [1, ...leavesOf(good)[0].shape] : leavesOf(good)[i].shape, leavesOf(good)[i].data]));
    expect(await code(put({ thetaGrads: wrongShape }))).toBe(Status.INVALID_ARGUMENT);
    const nan = wireTree(good.paths.map((p, i) => [p, leavesOf(good)[i].shape, new Float32Array(leavesOf(good)[i].data.length).fill(NaN)]));
    expect(await code(put({ thetaGrads: nan }))).toBe(Status.INVALID_ARGUMENT);
    expect(await code(put({ step: -1 }))).toBe(Status.INVALID_ARGUMENT);
    expect(learner.rejectedMessages).toBe(5);
    // token
    const guarded = requireToken(learner, 's3cret', () => learner.countRejected());
    expect(await code(new InProcessTransport(guarded, { token: 'wrong' }).getWorkerWeights({ experiment: exp, workerId: 0 }))).toBe(Status.UNAUTHENTICATED);
    expect(await code(new InProcessTransport(guarded).getWorkerWeights({ experiment: exp, workerId: 0 }))).toBe(Status.UNAUTHENTICATED);
    expect(await code(new InProcessTransport(guarded, { token: 's3cret' }).getWorkerWeights({ experiment: exp, workerId: 0 }))).toBe('ok');
    expect(learner.rejectedMessages).toBe(7);
    // nothing was applied; a good gradient is
    expect(await put({})).toEqual({ accepted: true, reason: '', currentStep: 0, finished: false });
    learner.close();
  });

  test('sync: a resent gradient for a step the worker already submitted is refused and counted as a duplicate, never applied twice', async () => {
    const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps: 1 });
    const learner = new DistributedLearner({ spec, registry, mode: 'sync', numWorkers: 2, log: quiet, lingerSeconds: 0 });
    await learner.init();
    const client = new InProcessTransport(learner);
    const exp = { name: spec.name, configHash: spec.hash };
    const ww = await client.getWorkerWeights({ experiment: exp, workerId: 0 });
    const zeros = wireTree(ww.theta.paths.map((p, i) => [p, (ww.theta.leaves[i] as { shape: number[] }).shape, new Float32Array((ww.theta.leaves[i] as { data: Float32Array }).data.length)]));
    const put = (workerId: number) => client.putGradient({ experiment: exp, workerId, step: 0, thetaGrads: zeros, meanLoss: 1, metrics: {}, genId: ww.genId });
    expect((await put(0)).accepted).toBe(true);
    expect(await put(0)).toMatchObject({ accepted: false, reason: 'duplicate', currentStep: 0 });
    expect(await put(0)).toMatchObject({ accepted: false, reason: 'duplicate' });
    expect(learner.duplicateGrads).toBe(2);
    expect((await put(1)).accepted).toBe(true);
    const result = await learner.run();
    expect(result).toMatchObject({ step: 1, workers: [0, 1], duplicateGrads: 2 });
    learner.close();
  });
});

describe('learner resume', () => {
  test('--resume writes SessionLog.START at the resumed step, as `lopt run --resume` does', async () => {
    const logdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-learner-session-'));
    const runTo = async (steps: number, resume: boolean) => {
      const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps });
      const learner = new DistributedLearner({ spec, registry, mode: 'async', logdir, resume, log: quiet, lingerSeconds: 0 });
      await learner.init();
      const worker = runWorker({ spec, registry, workerId: 0, client: new InProcessTransport(learner), log: quiet });
      await learner.run();
      await worker;
      learner.close();
    };
    await runTo(2, false);
    await runTo(3, true);
    const starts = listEventFiles(logdir).flatMap((f) => readEventFile(f)).filter((ev) => ev.session_log);
    expect(starts.map((ev) => [ev.step, ev.session_log?.status])).toEqual([[2, 1]]); // SessionLog.START = 1
    fs.rmSync(logdir, { recursive: true, force: true });
  });
});

describe('learner refusals', () => {
  test('--resume with no checkpoint to resume from is an error, not a fresh start', async () => {
    const spec = buildExperiment(registry, 'quadratic-pes', { set: SET, steps: 2 });
    const logdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-learner-resume-'));
    const learner = new DistributedLearner({ spec, registry, mode: 'async', logdir, resume: true, log: quiet });
    await expect(learner.init()).rejects.toThrow(/--resume: no checkpoint to resume from in .*checkpoints/);
    learner.close();
    fs.rmSync(logdir, { recursive: true, force: true });
  });
});

describe('gRPC transport on loopback', () => {
  const echo = (): LearnerHandler => ({
    getWorkerWeights: async (req) => ({
      experiment: req.experiment,
      step: 7,
      theta: wireTree([['w', [3], [1, 2, 3]]]),
      thetaModelState: null,
      outerIteration: 7,
      genId: 'g',
      finished: false,
      wait: false,
      numWorkers: 1,
    }),
    putGradient: async () => {
      throw new RpcError(Status.INVALID_ARGUMENT, 'nope');
    },
  });
  const exp = { name: 'e', configHash: 'h' };

  test('a request that does not decode is INVALID_ARGUMENT (not gRPC\'s INTERNAL)', async () => {
    const server = await startGrpcServer(echo(), { host: '127.0.0.1', port: 0 });
    const Raw = grpc.makeGenericClientConstructor(
      {
        put: {
          path: `/${distributed.SERVICE_NAME}/PutGradient`,
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Raw',
    );
    const client = new Raw(server.address, grpc.credentials.createInsecure()) as any;
    try {
      for (const payload of [Buffer.from([0xff, 0xff, 0xff, 0x01]), Buffer.from('not a protobuf at all')]) {
        const err = await new Promise<grpc.ServiceError>((resolve) => client.put(payload, (e: grpc.ServiceError) => resolve(e)));
        expect(err.code).toBe(Status.INVALID_ARGUMENT);
      }
    } finally {
      client.close();
      await server.close();
    }
  });

  test('bound port, token required (UNAUTHENTICATED otherwise), status codes pass through', async () => {
    const server = await startGrpcServer(requireToken(echo(), 'tok'), { host: '127.0.0.1', port: 0 });
    expect(server.port).toBeGreaterThan(0);
    const good = new GrpcLearnerClient(server.address, { token: 'tok', deadlineSeconds: 10 });
    const bad = new GrpcLearnerClient(server.address, { token: 'bad', deadlineSeconds: 10 });
    try {
      const r = await good.getWorkerWeights({ experiment: exp, workerId: 1 });
      expect(r.step).toBe(7);
      expect(Array.from((r.theta.leaves[0] as { data: Float32Array }).data)).toEqual([1, 2, 3]);
      await expect(bad.getWorkerWeights({ experiment: exp, workerId: 1 })).rejects.toMatchObject({ code: Status.UNAUTHENTICATED });
      await expect(good.putGradient({ experiment: exp, workerId: 1, step: 0, thetaGrads: wireTree([]), meanLoss: 0, metrics: {}, genId: '' })).rejects.toMatchObject({
        code: Status.INVALID_ARGUMENT,
        message: expect.stringMatching(/nope/),
      });
    } finally {
      good.close();
      bad.close();
      await server.close();
    }
    // learner gone: UNAVAILABLE (workers retry on it)
    const c = new GrpcLearnerClient(server.address, { deadlineSeconds: 5 });
    await expect(c.getWorkerWeights({ experiment: exp, workerId: 1 })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    c.close();
  });

  let haveOpenssl = true;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    haveOpenssl = false;
  }
  (haveOpenssl ? test : test.skip)('TLS with a self-signed certificate', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const server = await startGrpcServer(echo(), { host: '127.0.0.1', port: 0, tls: { cert, key } });
    const tls = new GrpcLearnerClient(server.address, { tls: { ca: cert }, deadlineSeconds: 10, serverNameOverride: 'localhost' });
    const plain = new GrpcLearnerClient(server.address, { deadlineSeconds: 5 });
    try {
      expect((await tls.getWorkerWeights({ experiment: exp, workerId: 0 })).step).toBe(7);
      await expect(plain.getWorkerWeights({ experiment: exp, workerId: 0 })).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    } finally {
      tls.close();
      plain.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

afterAll(() => {
  expect(tf.memory().numTensors).toBeGreaterThanOrEqual(0);
});
