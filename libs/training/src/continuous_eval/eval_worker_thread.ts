/**
 * An eval worker in a worker thread beside training (`lopt run --eval`): its own tf.js backend,
 * one job at a time (EvalJobRunner), results posted back to the chief's pool (single_machine.ts).
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadPlugin, random, registry } from '@lopt/core';
import type { EvalJob } from './chief';
import { EvalJobRunner } from './worker';

export type EvalThreadRequest = { op: 'run'; job: EvalJob };
export type EvalThreadReply =
  | { op: 'ready'; backend: string }
  | { op: 'done'; jobId: string; result: import('./metrics').EvalJobResult }
  | { op: 'error'; jobId?: string; error: string };

async function main(): Promise<void> {
  const { backend, plugins, random: randomConfig } = workerData as { backend: string; plugins: string[]; random: random.RandomConfig };
  random.configure(randomConfig);
  process.env.LOPT_QUIET = '1';
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded for their registrations, by name
  for (const lib of ['@lopt/tasks', '@lopt/optimizers', '@lopt/estimators']) require(lib);
  for (const p of plugins ?? []) await loadPlugin(p);
  await initBackend(backend);
  const runner = new EvalJobRunner(registry);
  let chain: Promise<void> = Promise.resolve();
  parentPort!.on('message', (msg: EvalThreadRequest) => {
    chain = chain.then(async () => {
      try {
        const result = await runner.run(msg.job);
        parentPort!.postMessage({ op: 'done', jobId: msg.job.id, result } satisfies EvalThreadReply);
      } catch (e) {
        parentPort!.postMessage({ op: 'error', jobId: msg.job.id, error: (e as Error).stack ?? String(e) } satisfies EvalThreadReply);
      }
    });
  });
  parentPort!.postMessage({ op: 'ready', backend: tf.getBackend() } satisfies EvalThreadReply);
}

void main().catch((e) => parentPort!.postMessage({ op: 'error', error: (e as Error).stack ?? String(e) } satisfies EvalThreadReply));
