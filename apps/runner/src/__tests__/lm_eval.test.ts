/**
 * `lopt eval` on language-model tasks (in process, cpu backend, tiny runs): a small transformer LM
 * task and an RNN LM family over the offline fortunes corpus, MLPLOpt (θ from a flax params
 * file) against Adam; every curve finite, the same starting loss (near ln 259) for every
 * optimizer, the report written. Skipped, saying why, when the corpus (Debian fortunes) is absent.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { random, registry, treeDispose } from '@lopt/core';
import '@lopt/tasks';
import '@lopt/estimators';
import { MLPLOpt } from '@lopt/optimizers';
import { findFortunesDir } from '@lopt/tasks';
import { exportFlaxParams } from '../flax_msgpack';
import { parseBaselines, runEval } from '../eval/evaluate';

let why = '';
try {
  findFortunesDir();
} catch (e) {
  why = (e as Error).message;
}
let dir = '';

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-lm-eval-'));
  const theta = new MLPLOpt().init(random.PRNGKey(0));
  fs.writeFileSync(path.join(dir, 'params_flax'), exportFlaxParams(theta, { step: 1 }));
  treeDispose(theta);
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

if (why) {
  test('fortunes corpus absent: lopt eval on LM tasks skipped', () => {
    console.warn(`SKIPPING lopt eval on LM tasks: ${why}`);
    expect(why).toMatch(/apt-get install fortunes/);
  });
}

const cases: Array<[string, Record<string, unknown>]> = [
  ['TransformerLMTask', { datasetName: 'fortunes_bytes_datasets', batchSize: 4, sequenceLength: 8, numHeads: 2, numLayers: 1, dModel: 16, dropoutRate: 0.1 }],
  ['ParametricLMRNN', { datasetName: 'fortunes_bytes_datasets', batchSize: 4, sequenceLength: 8, rnnSize: 16, embedSize: 8, core: 'lstm' }],
];

(why ? describe.skip : describe)('lopt eval on language-model tasks', () => {
  test.each(cases)('%s: MLPLOpt against Adam(1e-2), finite curves, same start', async (task, taskConfig) => {
    const steps = 8;
    const report = await runEval({
      paramsPath: path.join(dir, 'params_flax'),
      task,
      taskConfig,
      steps,
      baselines: parseBaselines('adam:1e-2', registry),
      seeds: 1,
      out: path.join(dir, `out-${task}`),
      evalEvery: 4,
      evalBatches: 1,
      lastEvalBatches: 2,
      registry,
    });
    expect(report.results.map((r) => r.label)).toEqual(['MLPLOpt (learned)', 'Adam(0.01)']);
    for (const r of report.results) {
      const curve = r.curves['train/loss'] as number[];
      expect(curve).toHaveLength(steps + 1);
      curve.forEach((x) => expect(Number.isFinite(x)).toBe(true));
      for (const s of ['train', 'outer_valid', 'test']) expect(Number.isFinite(r.final[s].mean)).toBe(true);
    }
    const [lopt, adam] = report.results.map((r) => r.curves['train/loss'] as number[]);
    expect(adam[0]).toBeCloseTo(lopt[0], 5);
    // a byte-level LM starts near ln(259) = 5.56
    expect(adam[0]).toBeGreaterThan(4);
    expect(adam[0]).toBeLessThan(7);
    expect(fs.existsSync(path.join(dir, `out-${task}`, 'eval.md'))).toBe(true);
  }, 120000);
});
