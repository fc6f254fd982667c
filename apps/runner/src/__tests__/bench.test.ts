import { registry } from '@lopt/core';
import { validateMetaTrainingConfig } from '@lopt/training';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mlpLoptNative } from '@lopt/optimizers';
import { compareWithReference, flopsPerOuterStep, fmaPeakGflops, runReference, type BenchResult } from '../bench';

describe('bench', () => {
  test('the FLOP model gives the hand-computed A ≈ 4.0, B ≈ 16.0 GFLOP per outer step', () => {
    const a = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-single-machine', {}), registry);
    const b = validateMetaTrainingConfig(registry.parseConfig('experiment', 'seed-learner-worker', {}), registry);
    expect(flopsPerOuterStep(a).total / 1e9).toBeCloseTo(3.99, 1);
    expect(flopsPerOuterStep(b).total / 1e9).toBeCloseTo(15.9, 0);
    expect(flopsPerOuterStep(a).taskSteps).toBe(800);
  });

  test('--reference: the reference script is run with the given interpreter and its JSON line read; medians and the ratio per configuration', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-bench-'));
    // a stand-in interpreter that checks it was given seed_bench.py and answers as the script does
    const fake = path.join(dir, 'python');
    fs.writeFileSync(fake, `#!/bin/sh\ncase "$1" in *tools/reference/seed_bench.py) ;; *) echo "wrong script $1" >&2; exit 2;; esac\necho "compiling..."\necho '{"config": "$3", "warmup": 3, "steps": 20, "seconds_to_first_step": 18.5, "steps_per_sec": 6.25}'\n`);
    fs.chmodSync(fake, 0o755);
    const opts = { backend: 'wasm', steps: 20, warmup: 3, configs: ['A' as const], threads: 2, out: dir, native: 'auto', reference: fake, rounds: 2 };
    expect(runReference(fake, 'A', opts)).toEqual({ config: 'A', stepsPerSec: 6.25, secondsToFirstStep: 18.5 });
    const broken = path.join(dir, 'broken');
    fs.writeFileSync(broken, '#!/bin/sh\necho "ModuleNotFoundError: jax" >&2\nexit 1\n');
    fs.chmodSync(broken, 0o755);
    expect(() => runReference(broken, 'B', opts)).toThrow(/--reference .*broken: seed_bench\.py --config B failed \(exit 1\):\nModuleNotFoundError: jax/);
    const ours = [12, 10, 11].map((sps, i) => ({ config: 'A', outerStepsPerSec: sps, secondsToFirstStep: 0.5 + i }) as BenchResult);
    const ref = [6, 5].map((sps) => ({ config: 'A' as const, stepsPerSec: sps, secondsToFirstStep: 20 }));
    expect(compareWithReference(ours, ref)).toEqual([{ config: 'A', ours: 11, reference: 5.5, ratio: 2, oursFirstStep: 1.5, referenceFirstStep: 20 }]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the FMA peak probe measures GFLOP/s on one and on two cores where the native kernels are built, else says it cannot', async () => {
    const one = await fmaPeakGflops(1, 0.02);
    if (!mlpLoptNative()) {
      expect(one).toBeNull();
      return;
    }
    // Only the shape of the answer is checked: a rate measured on a shared CI machine is no test
    // (the ratio of two- to one-thread rates failed once on a loaded runner).
    expect(Number.isFinite(one)).toBe(true);
    expect(one).toBeGreaterThan(0);
    const two = await fmaPeakGflops(2, 0.02);
    expect(Number.isFinite(two)).toBe(true);
    expect(two).toBeGreaterThan(0);
  });
});
