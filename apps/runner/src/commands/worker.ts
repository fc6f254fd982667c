/**
 * `lopt worker <experiment> --learner HOST:P`: a worker process of distributed meta-training
 * (reference `outer_train.py`, `train_worker`). Computes meta-gradients with the experiment's
 * estimators, keeps its unroll states locally, reconnects to a restarted learner by itself. See
 * docs/distributed.md.
 */
import * as os from 'os';
import { randomInt } from 'crypto';
import { Command, Option } from 'commander';
import { initBackend } from '@lopt/core';
import { hostPortArg, secondsArg, collect, BACKEND_CHOICES } from './args';
import { CliContext } from './context';
import { readTokenFile } from './learner';


/** --worker-id, else $LOPT_WORKER_ID, else a StatefulSet-style hostname ordinal (`name-3`), else random. */
export function defaultWorkerId(env: NodeJS.ProcessEnv = process.env, hostname = os.hostname()): number {
  if (env.LOPT_WORKER_ID !== undefined && /^\d+$/.test(env.LOPT_WORKER_ID)) return Number(env.LOPT_WORKER_ID);
  const m = /-(\d+)$/.exec(hostname);
  if (m && Number(m[1]) < 1e6) return Number(m[1]);
  return randomInt(1000, 2 ** 31 - 1);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run a worker of distributed meta-training: computes meta-gradients for a `lopt learner`')
    .argument('<experiment>', 'experiment name (the learner\'s)')
    .requiredOption('--learner <host:port>', 'the learner\'s address')
    .option('--token-file <file>', 'token the learner requires')
    .option('--worker-id <i>', 'worker id (default: $LOPT_WORKER_ID, a hostname ordinal, or random)')
    .option('--set <path=value>', 'override a config field, as on the learner; repeatable', collect, [])
    .option('--config <file>', 'JSON or YAML file of config fields (applied before --set)')
    .addOption(new Option('--backend <name>', 'tf.js backend (default: $LOPT_BACKEND, else auto)').choices(BACKEND_CHOICES))
    .option('--tls-ca <file>', 'PEM CA to verify the learner\'s certificate (enables TLS)')
    .option('--tls-cert <file>', 'PEM client certificate (mutual TLS)')
    .option('--tls-key <file>', 'PEM client private key (mutual TLS)')
    .option('--tls-server-name <name>', 'name to check the learner\'s certificate against (default: the host)')
    .option('--give-up-seconds <s>', 'exit with an error when the learner stays unreachable this long', '600')
    .option('--threads <n>', "1 (default), 2 or auto: PES estimators unroll their antithetic branches in two worker threads (same gradients)")
    .action(async (experiment: string, o: Record<string, any>) => {
      // loaded when the command runs, so `lopt list` does not pull in every lib
      const training = await import('@lopt/training');
      const { buildExperiment, runWorker } = training.distributed;
      const { resolveThreads } = training;
      const { GrpcLearnerClient } = await import('../distributed/grpc');
      const threads = resolveThreads(o.threads);
      const learnerAddress = hostPortArg('--learner', o.learner);
      const giveUpSeconds = secondsArg('--give-up-seconds', o.giveUpSeconds, 0.001);
      const log = (l: string) => ctx.stderr.write(l + '\n');
      await initBackend(o.backend);
      const spec = buildExperiment(ctx.registry, experiment, { configFile: o.config, set: o.set });
      const token = readTokenFile(o.tokenFile);
      let workerId: number;
      if (o.workerId !== undefined) {
        workerId = Number(o.workerId);
        if (!Number.isInteger(workerId) || workerId < 0) throw new Error(`--worker-id must be a non-negative integer, got '${o.workerId}'`);
      } else workerId = defaultWorkerId();
      const tls = o.tlsCa || o.tlsCert || o.tlsKey ? { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey } : undefined;
      const client = new GrpcLearnerClient(learnerAddress, { token, tls, serverNameOverride: o.tlsServerName });
      log(`[worker ${workerId}] experiment ${spec.name} (config hash ${spec.hash}), learner ${learnerAddress}`);
      try {
        await runWorker({
          spec,
          client,
          workerId,
          registry: ctx.registry,
          log,
          giveUpSeconds,
          threads,
          plugins: ctx.plugins,
        });
      } finally {
        client.close();
      }
    });
}
