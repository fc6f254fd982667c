/**
 * `lopt learner <experiment> --port P`: the learner process of distributed meta-training
 * (reference `outer_train.py`, `train_learner`). Serves θ over gRPC, gathers workers' gradients
 * (async with staleness, or sync), writes TensorBoard scalars and checkpoints to --logdir. See
 * docs/distributed.md.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { initBackend } from '@lopt/core';
import { hostPortArg, intArg, secondsArg, collect, BACKEND_CHOICES } from './args';
import { CliContext } from './context';


/** Reads a token file (trimmed); an empty file is an error. */
export function readTokenFile(file: string | undefined): string | null {
  if (!file) return null;
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`cannot read --token-file ${file}: ${(e as Error).message}`);
  }
  if (!token) throw new Error(`--token-file ${file} is empty`);
  return token;
}

export interface LearnerCliOptions {
  port?: string;
  host: string;
  tokenFile?: string;
  mode: 'async' | 'sync';
  batchSize?: string;
  staleness?: string;
  workers?: string;
  logdir?: string;
  resume?: boolean;
  steps?: string;
  set: string[];
  config?: string;
  backend?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  lingerSeconds?: string;
  eval?: boolean;
  evalLeaseSeconds?: string;
  population?: string;
  memberId?: string;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('learner')
    .description('run the learner of distributed meta-training: serves θ to `lopt worker` processes over gRPC and applies their gradients')
    .argument('<experiment>', 'experiment name (see `lopt list experiments`)')
    .option('--port <p>', 'port to listen on (0 picks a free one; the bound port is logged)', '0')
    .option('--host <h>', 'address to bind (use 0.0.0.0 to accept other machines)', '127.0.0.1')
    .option('--token-file <file>', 'every call must carry this token (authorization: Bearer <token>)')
    .addOption(new Option('--mode <mode>', 'async: staleness-filtered buffer; sync: one gradient per worker per step').choices(['async', 'sync']).default('async'))
    .option('--batch-size <k>', 'async: gradients per update (default 1)')
    .option('--staleness <s>', 'async: accept gradients computed at most s steps ago (default 1)')
    .option('--workers <n>', 'number of workers (sync: ids 0..n-1; default: config numWorkers in learner-worker mode, else 1)')
    .option('--logdir <dir>', 'TensorBoard scalars and checkpoints go here')
    .option('--resume', 'continue from the newest checkpoint in --logdir')
    .option('--steps <n>', 'outer steps (overrides the config)')
    .option('--set <path=value>', 'override a config field; workers must use the same overrides; repeatable', collect, [])
    .option('--config <file>', 'JSON or YAML file of config fields (applied before --set)')
    .addOption(new Option('--backend <name>', 'tf.js backend (default: $LOPT_BACKEND, else auto)').choices(BACKEND_CHOICES))
    .option('--tls-cert <file>', 'PEM server certificate (enables TLS, with --tls-key)')
    .option('--tls-key <file>', 'PEM server private key')
    .option('--tls-ca <file>', 'PEM CA: require client certificates signed by it (mutual TLS)')
    .option('--linger-seconds <s>', 'after the last step, keep telling workers to exit for up to s seconds', '5')
    .option('--eval', "host the eval chief of continuous evaluation for `lopt eval-worker` processes (the config's eval: section; needs --logdir)")
    .option('--eval-lease-seconds <s>', 'an eval worker not heard from this long loses its job to another', '3600')
    .option('--population <host:port>', 'run as member --member-id of the population whose controller (lopt population --serve) is at host:port; --logdir is the population directory')
    .option('--member-id <i>', 'with --population: the member this learner is')
    .action(async (experiment: string, o: LearnerCliOptions) => {
      // loaded when the command runs, so `lopt list` does not pull in every lib
      const { buildExperiment, DistributedLearner, requireToken } = (await import('@lopt/training')).distributed;
      const { startGrpcServer } = await import('../distributed/grpc');
      const log = (l: string) => ctx.stderr.write(l + '\n');
      const lingerSeconds = secondsArg('--linger-seconds', o.lingerSeconds ?? '5') as number;
      const evalLeaseSeconds = secondsArg('--eval-lease-seconds', o.evalLeaseSeconds ?? '3600', 0.001) as number;
      if (o.eval && !o.logdir) throw new Error("--eval needs --logdir: the eval chief watches the run's checkpoints there");
      const training = await import('@lopt/training');
      if ((o.population === undefined) !== (o.memberId === undefined)) throw new Error('--population and --member-id go together: this learner is one member of the population served at host:port');
      if (o.population !== undefined) {
        hostPortArg('--population', o.population);
        if (!o.logdir) throw new Error('--population needs --logdir: the population directory the controller and every member share');
        if (o.resume) throw new Error('--population: leave out --resume; a member always asks the controller what to run (its last reported checkpoint after a restart)');
      }
      await initBackend(o.backend);
      const spec = buildExperiment(ctx.registry, experiment, { configFile: o.config, set: o.set, steps: intArg('--steps', o.steps, 1) });
      const token = readTokenFile(o.tokenFile);
      // --population: validated before anything is written; this learner's files go under members/<i>
      const pv = o.population !== undefined ? training.population.validatePopulation(spec.config, ctx.registry) : null;
      const memberId = pv ? intArg('--member-id', o.memberId, 0)! : null;
      if (pv && memberId! >= pv.population.members) throw new Error(`--member-id must be one of 0..${pv.population.members - 1}, got ${memberId}`);
      if (pv && pv.population.value === 'eval' && !o.eval) throw new Error("population.value 'eval': this member reports its eval chief's results; add --eval (and start lopt eval-worker processes)");
      const runLogdir = pv ? path.join(o.logdir!, 'members', String(memberId)) : o.logdir;
      const learner = new DistributedLearner({
        spec,
        registry: ctx.registry,
        mode: o.mode,
        batchSize: intArg('--batch-size', o.batchSize, 1),
        staleness: intArg('--staleness', o.staleness, 0),
        numWorkers: intArg('--workers', o.workers, 1),
        logdir: runLogdir,
        resume: !!o.resume,
        lingerSeconds,
        log,
        ...(pv ? { keepCheckpoints: pv.population.keepCheckpoints, checkpointOnInit: false } : {}),
      });
      await learner.init();
      // --eval: the chief watches this run's checkpoints; eval workers use this server and token.
      // A member reporting eval results needs every reported checkpoint evaluated: no skipping.
      const waiter = pv && pv.population.value === 'eval' ? new training.population.EvalValueWaiter(pv.population.evalTag) : null;
      const evalConfig = waiter ? { ...spec.config, eval: { ...(spec.config.eval ?? training.continuousEval.ContinuousEvalSchema.parse({})), skipCheckpointsIfBusy: false } } : spec.config;
      const hosted = o.eval
        ? await training.continuousEval.hostEvalChief({
            logdir: runLogdir!,
            config: evalConfig,
            token,
            leaseSeconds: evalLeaseSeconds,
            log,
            onWritten: waiter?.onWritten,
          })
        : null;
      const evalStop = new AbortController();
      const handler = requireToken(learner, token, (why) => {
        learner.countRejected();
        log(`[learner] refused a call: ${why}`);
      });
      const server = await startGrpcServer(handler, {
        host: o.host,
        port: intArg('--port', o.port, 0) ?? 0,
        tls: o.tlsCert || o.tlsKey || o.tlsCa ? { cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa } : undefined,
        evalHandler: hosted?.service,
      });
      log(
        `[learner] listening on ${server.address} (experiment ${spec.name}, config hash ${spec.hash}, mode ${learner.mode}, ` +
          `workers ${learner.numWorkers}, step ${learner.step}/${learner.steps}${token ? ', token required' : ''}${o.tlsCert ? ', TLS' : ''})`,
      );
      let signals = 0;
      const onSignal = (sig: string) => {
        signals++;
        if (signals > 1) process.exit(130);
        log(`[learner] ${sig}: stopping after the current step (a checkpoint is written); again to exit now`);
        learner.requestStop();
        evalStop.abort();
      };
      const onInt = () => onSignal('SIGINT');
      const onTerm = () => onSignal('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      let client: import('../distributed/population_grpc').PopulationGrpcClient | null = null;
      try {
        if (pv) {
          const { PopulationGrpcClient } = await import('../distributed/population_grpc');
          const ids = { name: experiment, configHash: training.resumeHash(spec.config) };
          client = new PopulationGrpcClient(hostPortArg('--population', o.population!), { experiment: ids, token, log, memberId: memberId! });
          const fmt = (m: Record<string, number>) => Object.entries(m).map(([k, x]) => `${k.replace(/^thetaOptimizer\.config\./, '')}=${x.toPrecision(4)}`).join(' ');
          const r = await training.population.runLearnerMember({
            learner,
            config: spec.config,
            population: pv,
            controller: client,
            member: memberId!,
            registry: ctx.registry,
            evalValue: waiter && hosted ? (saved) => waiter.valueOf(saved, hosted.poll) : undefined,
            onEvent: (e) => {
              if (e.type === 'report') log(`[population] member ${e.member} step ${e.step}/${learner.steps}: value ${e.value.toPrecision(5)} ${fmt(e.metaParams)} (generation ${e.generationId.slice(0, 8)})`);
              else if (e.type === 'switch') log(`[population] member ${e.member} -> generation ${e.generationId.slice(0, 8)} at step ${e.step}${e.from ? ` from ${path.relative(o.logdir!, e.from)}` : ' from scratch'}: ${fmt(e.metaParams)}`);
            },
          });
          log(`[population] member ${memberId} ${r.interrupted ? 'stopped' : 'done'} at step ${r.step}${r.lastReport ? `, last value ${r.lastReport.value.toPrecision(5)}` : ''}`);
        } else {
          await learner.run();
        }
        await learner.linger();
        if (hosted && !evalStop.signal.aborted) {
          log('[learner] training done; waiting for the evaluation of its checkpoints');
          await hosted.finish(evalStop.signal);
          // eval workers ask every 0.5 s: give them time to hear that the run is over
          await new Promise((r) => setTimeout(r, lingerSeconds * 1000));
        }
      } finally {
        client?.close();
        await hosted?.close();
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        await server.close();
        learner.close();
      }
    });
}
