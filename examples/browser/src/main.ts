/**
 * The browser example's page: picks the backend (`?backend=wasm|webgl|cpu`, default wasm), runs
 * the two demos of demo.ts and draws their loss curves. The results are also left on
 * `window.loptResults` for the Playwright test (test/e2e/browser.test.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { initBackend, treeDispose } from '@lopt/core';
import { COMPARE_DEFAULTS, META_DEFAULTS, compareOnLayersModel, metaTrainOnQuadratics, pretrainedTheta } from './demo';
import { drawChart, type Series } from './chart';

interface Results {
  backend?: string;
  meta: number[];
  train: { mlpLOpt: number[]; adam: number[] };
  metaDone: boolean;
  trainDone: boolean;
  done: boolean;
  error?: string;
}

const results: Results = { meta: [], train: { mlpLOpt: [], adam: [] }, metaDone: false, trainDone: false, done: false };
(window as unknown as { loptResults: Results }).loptResults = results;

const statusEl = document.getElementById('status')!;
const lines: string[] = [];
function status(line: string, replaceLast = false): void {
  if (replaceLast) lines.pop();
  lines.push(line);
  statusEl.textContent = lines.join('\n');
}
/** Lets the page paint between steps. */
const frame = () => new Promise<void>((resolve) => requestAnimationFrame(() => resolve()));

function drawMeta(): void {
  const series: Series[] = [{ label: 'LearnableAdam meta-loss (PES)', color: '#7b3294', values: results.meta }];
  drawChart(document.getElementById('meta') as HTMLCanvasElement, 'Meta-training on quadratics', 'outer step', series);
}
function drawTrain(): void {
  const series: Series[] = [
    { label: 'MLPLOpt (pretrained)', color: '#d7301f', values: results.train.mlpLOpt },
    { label: 'Adam(1e-3)', color: '#2b8cbe', values: results.train.adam },
  ];
  drawChart(document.getElementById('train') as HTMLCanvasElement, 'tfjs-layers model on spirals', 'step', series);
}

async function main(): Promise<void> {
  const wanted = new URLSearchParams(location.search).get('backend') ?? 'wasm';
  setWasmPaths(new URL('wasm/', location.href).href);
  if (wanted === 'webgl') {
    if (!(await tf.setBackend('webgl'))) throw new Error('webgl backend failed to initialise');
    await tf.ready();
    results.backend = 'webgl';
  } else {
    results.backend = await initBackend(wanted);
  }
  status(`backend: ${results.backend}`);

  const t0 = performance.now();
  status('meta-training…');
  await metaTrainOnQuadratics(META_DEFAULTS, async (i, loss) => {
    results.meta.push(loss);
    status(`meta-training: outer step ${i + 1}/${META_DEFAULTS.outerSteps}, meta-loss ${loss.toFixed(3)}`, true);
    drawMeta();
    await frame();
  });
  results.metaDone = true;
  status(`meta-training: ${META_DEFAULTS.outerSteps} outer steps in ${((performance.now() - t0) / 1000).toFixed(1)} s, meta-loss ${results.meta[0].toFixed(2)} → ${results.meta.at(-1)!.toFixed(2)}`, true);

  const t1 = performance.now();
  const res = await fetch('pretrained/theta.tree');
  if (!res.ok) throw new Error(`pretrained/theta.tree: HTTP ${res.status}`);
  const theta = pretrainedTheta(new Uint8Array(await res.arrayBuffer()));
  status('training the tfjs-layers model…');
  await compareOnLayersModel(theta, COMPARE_DEFAULTS, async (i, l) => {
    results.train.mlpLOpt.push(l.mlpLOpt);
    results.train.adam.push(l.adam);
    status(`training: step ${i + 1}/${COMPARE_DEFAULTS.steps}, MLPLOpt ${l.mlpLOpt.toFixed(3)}, Adam ${l.adam.toFixed(3)}`, true);
    if (i % 5 === 4 || i === COMPARE_DEFAULTS.steps - 1) {
      drawTrain();
      await frame();
    }
  });
  treeDispose(theta);
  results.trainDone = true;
  const { mlpLOpt, adam } = results.train;
  status(`training: ${COMPARE_DEFAULTS.steps} steps in ${((performance.now() - t1) / 1000).toFixed(1)} s, loss MLPLOpt ${mlpLOpt[0].toFixed(3)} → ${mlpLOpt.at(-1)!.toFixed(3)}, Adam ${adam[0].toFixed(3)} → ${adam.at(-1)!.toFixed(3)}`, true);
  drawTrain();
}

main()
  .catch((e: unknown) => {
    results.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
    status(`error: ${results.error}`);
  })
  .finally(() => {
    results.done = true;
  });
