/**
 * `lopt eval-worker --learner HOST:P`: an eval worker of continuous evaluation (reference
 * `continuous_eval/run_eval_worker.py`). Asks the eval chief that `lopt learner --eval` hosts for a
 * job (a task, a seed and a checkpoint's θ), trains a fresh task with θ using `lopt eval`'s code,
 * sends the curves back; exits when the learner says the run is over and every checkpoint is
 * evaluated. Same transport, token and TLS options as `lopt worker`. See docs/continuous-eval.md.
 */
import * as os from 'os';
import { Command, Option } from 'commander';
import { initBackend } from '@lopt/core';
import { hostPortArg, secondsArg, BACKEND_CHOICES } from './args';
import { CliContext } from './context';
import { readTokenFile } from './learner';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('eval-worker')
    .description('run an eval worker of continuous evaluation for a `lopt learner --eval`: trains fresh tasks with its checkpoints')
    .requiredOption('--learner <host:port>', "the learner's address")
    .option('--token-file <file>', 'token the learner requires')
    .option('--worker-id <id>', 'worker id; a restarted worker with the same id resumes its job (default: <hostname>-<pid>)')
    .addOption(new Option('--backend <name>', 'tf.js backend (default: $LOPT_BACKEND, else auto)').choices(BACKEND_CHOICES))
    .option('--tls-ca <file>', "PEM CA to verify the learner's certificate (enables TLS)")
    .option('--tls-cert <file>', 'PEM client certificate (mutual TLS)')
    .option('--tls-key <file>', 'PEM client private key (mutual TLS)')
    .option('--tls-server-name <name>', "name to check the learner's certificate against (default: the host)")
    .option('--give-up-seconds <s>', 'exit with an error when the learner stays unreachable this long', '600')
    .action(async (o: Record<string, any>) => {
      const learnerAddress = hostPortArg('--learner', o.learner);
      const giveUpSeconds = secondsArg('--give-up-seconds', o.giveUpSeconds, 0.001);
      const workerId = o.workerId !== undefined ? String(o.workerId) : `${os.hostname()}-${process.pid}`;
      if (!/^[A-Za-z0-9_.:-]+$/.test(workerId)) throw new Error(`--worker-id may hold letters, digits and _ . : - only, got '${workerId}'`);
      const token = readTokenFile(o.tokenFile);
      // loaded when the command runs, so `lopt list` does not pull in every lib
      const { runEvalWorker } = (await import('@lopt/training')).continuousEval;
      const { GrpcEvalClient } = await import('../distributed/grpc');
      const log = (l: string) => ctx.stderr.write(l + '\n');
      await initBackend(o.backend);
      const tls = o.tlsCa || o.tlsCert || o.tlsKey ? { ca: o.tlsCa, cert: o.tlsCert, key: o.tlsKey } : undefined;
      const client = new GrpcEvalClient(learnerAddress, { token, tls, serverNameOverride: o.tlsServerName });
      log(`[eval worker ${workerId}] learner ${learnerAddress}`);
      try {
        await runEvalWorker({ client, workerId, registry: ctx.registry, log, giveUpSeconds });
      } finally {
        client.close();
      }
    });
}
