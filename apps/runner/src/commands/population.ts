/**
 * `lopt population <experiment> --members K --mutator NAME`: population-based meta-training in
 * this process (reference `entry_points/run_population_controller.py` with its learners): K
 * members meta-train the experiment, a `PopulationController` with the mutator hands checkpoints
 * over and retunes the theta optimizer's hyper-parameters. The experiment's `population:` section
 * (or `--set population.<field>=...`) configures the rest; see docs/population.md.
 */
import { Command, CommanderError, Option } from 'commander';
import * as path from 'path';
import type { population as populationNs } from '@lopt/training';
import { hostPortArg, intArg, secondsArg, BACKEND_CHOICES, collect } from './args';
import { readTokenFile } from './learner';
import { CliContext } from './context';

type TrainingModule = typeof import('@lopt/training');


interface PopulationCliOptions {
  members?: string;
  mutator?: string;
  evalEvery?: string;
  steps?: string;
  seed?: string;
  logdir?: string;
  backend?: string;
  set: string[];
  config?: string;
  resume?: boolean;
  serve?: boolean;
  host: string;
  port: string;
  tokenFile?: string;
  controller?: string;
  member?: string;
  spawnMembers?: boolean;
  memberCommand?: string;
  memberTimeoutSeconds?: string;
  maxRestarts?: string;
}

/** `--members`, `--mutator` and `--eval-every` as `--set population.*` overrides (applied last). */
export function populationOverrides(o: Pick<PopulationCliOptions, 'members' | 'mutator' | 'evalEvery'>, singleMember: (mutator: string) => boolean): string[] {
  const out: string[] = [];
  const members = intArg('--members', o.members, 1);
  const evalEvery = intArg('--eval-every', o.evalEvery, 1);
  if (o.mutator !== undefined) {
    if (!/^[A-Za-z0-9_.-]+$/.test(o.mutator)) throw new Error(`--mutator: '${o.mutator}' is not a mutator name`);
    out.push(`population.mutator.name=${o.mutator}`);
    // a single-member mutator without --members runs one member
    if (members === undefined && singleMember(o.mutator)) out.push('population.members=1');
  }
  if (members !== undefined) out.push(`population.members=${members}`);
  if (evalEvery !== undefined) out.push(`population.evalEvery=${evalEvery}`);
  return out;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('population')
    .description('population-based meta-training: K members, a mutator handing checkpoints over and retuning the theta optimizer (reference population/)')
    .argument('<experiment>', "a registered experiment (see 'lopt list experiments')")
    .option('--members <k>', 'members of the population (shorthand for --set population.members=K; default 4, 1 for single-member mutators)')
    .option('--mutator <name>', 'winner_take_all_genetic | single_worker_explore | fixed_schedule (or the class names; see lopt list population_mutator)')
    .option('--eval-every <n>', 'outer steps between a member\'s reports (shorthand for --set population.evalEvery=N)')
    .option('--steps <n>', 'outer steps per member (shorthand for --set steps=N)')
    .option('--seed <s>', 'random seed (shorthand for --set seed=S)')
    .option('--logdir <dir>', 'log directory (default runs/<experiment>-population-<timestamp>)')
    .addOption(new Option('--backend <name>', 'tf.js backend (default: $LOPT_BACKEND, else auto)').choices(BACKEND_CHOICES))
    .option('--set <path=value>', 'override a config field, e.g. --set population.hparams={"thetaOptimizer.config.learningRate":{"init":[1e-4,1e-3]}}; repeatable', collect, [])
    .option('--config <file>', 'JSON or YAML file of config fields (applied before --set)')
    .option('--resume', 'continue the population in --logdir from its population.state')
    .option('--serve', 'run only the controller, for members in other processes (--controller); runs until SIGINT/SIGTERM')
    .option('--host <h>', '--serve: address to bind', '127.0.0.1')
    .option('--port <p>', '--serve: port (0 picks a free one; the bound address is printed)', '0')
    .option('--token-file <file>', 'controller and members: every call carries this token')
    .option('--controller <host:port>', 'run one member (--member) against the controller at host:port (same --logdir, experiment and overrides)')
    .option('--member <i>', 'with --controller: the member this process runs')
    .option('--spawn-members', '--serve: also start every member as a child process, and replace one that dies or goes silent (it continues from its last reported checkpoint); exits when all are done')
    .option('--member-command <cmd>', "--spawn-members: a member's shell command, {controller} and {member} replaced (default: this command with --controller {controller} --member {member}), e.g. a lopt learner --population {controller} --member-id {member}")
    .option('--member-timeout-seconds <s>', '--serve: a member not heard from this long (heartbeats every 2 s) is dead: killed and replaced with --spawn-members, else reported', '60')
    .option('--max-restarts <n>', '--spawn-members: replacements per member before the controller gives up', '10')
    .addHelpText('after', '\nExample: lopt population quadratic-pes --members 4 --mutator winner_take_all_genetic --steps 50 --logdir runs/pop')
    .action(async (experiment: string, o: PopulationCliOptions) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- @lopt/training loads only when a run starts
      const training = require('@lopt/training') as TrainingModule;
      const pop = training.population;
      if (o.resume && !o.logdir) throw new Error('--resume needs --logdir: the population directory to continue');
      const single = (name: string) => pop.SINGLE_MEMBER_MUTATORS.has(pop.mutatorName(name));
      // Everything is validated before anything is written.
      const set = [...o.set, ...populationOverrides(o, single)];
      const config = training.resolveRunConfig(ctx.registry, experiment, { configFile: o.config, set, steps: o.steps, seed: o.seed });
      const v = pop.validatePopulation(config, ctx.registry);
      if ((o.serve || o.controller) && !o.logdir) throw new Error(`--${o.serve ? 'serve' : 'controller'} needs --logdir: the population directory the controller and every member share`);
      if (o.serve && o.controller) throw new Error('--serve and --controller exclude each other: a process is the controller or a member');
      const logdir = o.logdir ?? training.defaultLogdir(`${experiment}-population`);
      const token = readTokenFile(o.tokenFile);
      const ids = { name: experiment, configHash: training.resumeHash(training.withRandomMode(config)) };
      if ((o.spawnMembers || o.memberCommand) && !o.serve) throw new Error('--spawn-members and --member-command go with --serve: the controller starts the members');
      if (o.memberCommand && !o.spawnMembers) throw new Error('--member-command needs --spawn-members');
      if (o.serve) {
        const memberTimeoutSeconds = secondsArg('--member-timeout-seconds', o.memberTimeoutSeconds ?? '60', 0.001) as number;
        const spawnMembers = o.spawnMembers ? { command: o.memberCommand ?? null, args: memberArgs(experiment, o, logdir), maxRestarts: intArg('--max-restarts', o.maxRestarts ?? '10', 0)! } : null;
        return serve(ctx, config, v, logdir, ids, { host: o.host, port: intArg('--port', o.port, 0)!, token, resume: Boolean(o.resume), memberTimeoutSeconds, spawnMembers });
      }
      let remote: populationNs.PopulationTrainOptions['remote'];
      let close = () => undefined as void;
      if (o.controller !== undefined || o.member !== undefined) {
        if (o.controller === undefined || o.member === undefined) throw new Error('--controller and --member go together: one member of a population served by lopt population --serve');
        const member = intArg('--member', o.member, 0)!;
        if (member >= v.population.members) throw new Error(`--member must be one of 0..${v.population.members - 1}, got ${member}`);
        const { PopulationGrpcClient } = await import('../distributed/population_grpc');
        const client = new PopulationGrpcClient(hostPortArg('--controller', o.controller), { experiment: ids, token, log: (l) => ctx.stderr.write(l + '\n'), memberId: member });
        remote = { service: client, members: [member] };
        close = () => client.close();
      }

      const stop = new AbortController();
      let stopSignal: string | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        if (stopSignal) {
          ctx.stderr.write(`\nlopt: second ${sig}, exiting now (the population state is saved after every report)\n`);
          process.exit(130);
        }
        stopSignal = sig;
        ctx.stderr.write(`lopt: ${sig} received, stopping after this member's segment (Ctrl-C again to quit at once)\n`);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const fmt = (m: Record<string, number> | null) =>
        m ? Object.entries(m).map(([k, x]) => `${k.replace(/^thetaOptimizer\.config\./, '')}=${x.toPrecision(4)}`).join(' ') : '-';
      let result: populationNs.PopulationResult;
      try {
        result = await pop.trainPopulation(config, {
          experiment,
          registry: ctx.registry,
          logdir,
          resume: o.resume,
          backend: o.backend,
          plugins: ctx.plugins,
          signal: stop.signal,
          remote,
          onEvent: (e) => {
            if (e.type === 'start') {
              ctx.stderr.write(
                `lopt population ${experiment}: ${e.members} member${e.members > 1 ? 's' : ''}, ${e.mutator}, ${e.total} steps each, ` +
                  `reports every ${v.population.evalEvery}, backend ${e.backend}, logdir ${logdir}${e.resumed ? ' (resumed)' : ''}\n`,
              );
            } else if (e.type === 'report') {
              ctx.stderr.write(`[population] member ${e.member} step ${e.step}/${config.steps}: value ${e.value.toPrecision(5)} ${fmt(e.metaParams)} (generation ${e.generationId.slice(0, 8)})\n`);
            } else if (e.type === 'switch') {
              const from = e.from ? ` from ${path.relative(logdir, e.from)}` : ' from scratch';
              ctx.stderr.write(`[population] member ${e.member} -> generation ${e.generationId.slice(0, 8)} at step ${e.step}${from}: ${fmt(e.metaParams)}\n`);
            } else if (e.type === 'log') ctx.stderr.write(`lopt: ${e.message}\n`);
          },
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        close();
      }
      const best = result.members[result.best].lastReport;
      ctx.stdout.write(
        [
          stopSignal
            ? `lopt population ${experiment}: stopped by ${stopSignal}; resume with --resume --logdir ${logdir}`
            : `lopt population ${experiment}: done${result.generations === null ? '' : `, ${result.generations} generations`}`,
          ...result.members.map(
            (m, i) => `  member ${remote ? remote.members[i] : i}: step ${m.step}, last value ${m.lastReport ? m.lastReport.value.toPrecision(5) : '-'} with ${fmt(m.lastReport?.metaParams ?? null)}${i === result.best ? '   <- best' : ''}`,
          ),
          `  best:        member ${remote ? remote.members[result.best] : result.best}${best ? `, ${fmt(best.metaParams)}, checkpoint ${path.relative(process.cwd(), best.checkpoint) || best.checkpoint}` : ''}`,
          `  state:       ${path.join(logdir, 'population.state')}`,
          `  logs:        ${logdir}   (tensorboard --logdir ${logdir})`,
        ].join('\n') + '\n',
      );
      if (stopSignal) throw new CommanderError(130, 'lopt.interrupted', `interrupted by ${stopSignal}`);
    });
}

/** `--serve`: the controller alone, over gRPC, until SIGINT/SIGTERM (its state file is always current). */
async function serve(
  ctx: CliContext,
  config: import('@lopt/training').MetaTrainingConfig,
  v: populationNs.ValidatedPopulation,
  logdir: string,
  experiment: { name: string; configHash: string },
  o: { host: string; port: number; token: string | null; resume: boolean; memberTimeoutSeconds: number; spawnMembers: { command: string | null; args: string[]; maxRestarts: number } | null },
): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- @lopt/training loads only when a run starts
  const pop = (require('@lopt/training') as TrainingModule).population;
  const { startPopulationServer } = await import('../distributed/population_grpc');
  const state = path.join(logdir, pop.STATE_FILE);
  const fs = await import('fs');
  if (o.resume && !fs.existsSync(state)) throw new Error(`--resume: no ${pop.STATE_FILE} in ${logdir}`);
  if (!o.resume && fs.existsSync(state)) throw new Error(`${logdir} already holds a population (${pop.STATE_FILE}); pass --resume to continue it, or choose another --logdir`);
  const log = (l: string) => ctx.stderr.write(l + '\n');
  const controller = new pop.PopulationController(v.initial, pop.makeMutator(v, ctx.registry), { logDir: logdir, log });
  fs.writeFileSync(path.join(logdir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const server = await startPopulationServer(controller, { experiment, host: o.host, port: o.port, token: o.token, log });
  log(`[population] controller of ${v.population.members} member(s), ${v.mutatorName}, listening on ${server.address}${controller.resumed ? ' (resumed)' : ''}`);
  const members = o.spawnMembers ? new MemberSupervisor(server, v.population.members, o.spawnMembers, o.memberTimeoutSeconds, log) : null;
  let failure: Error | null = null;
  // without --spawn-members: a member silent for the timeout is reported (start it again by hand)
  const silent = new Set<number>();
  const watch = members
    ? null
    : setInterval(() => {
        for (const [id, l] of server.liveness) {
          const quiet = (Date.now() - l.lastSeen) / 1000 > o.memberTimeoutSeconds;
          if (quiet && !silent.has(id)) log(`[population] member ${id} not heard from for ${o.memberTimeoutSeconds} s: if it died, start it again with the same command (it continues from its last reported checkpoint)`);
          if (quiet) silent.add(id);
          else silent.delete(id);
        }
      }, 1000);
  await new Promise<void>((resolve) => {
    const done = (sig: NodeJS.Signals) => {
      log(`[population] ${sig}: controller stopping (state in ${state})`);
      finish();
    };
    const finish = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
    members?.start(finish, (e) => {
      failure = e;
      finish();
    });
  });
  if (watch) clearInterval(watch);
  await members?.stop();
  await server.close();
  if (failure) throw failure;
  if (members) log(`[population] every member is done (state in ${state})`);
}

/** Sends `sig` to the process group of `child` (spawned detached), else to the child alone. */
function signalGroup(child: import('child_process').ChildProcess, sig: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      /* gone */
    }
  }
}

/** The arguments of `lopt population` that make a member of this population (`--controller`/`--member` added per member). */
function memberArgs(experiment: string, o: PopulationCliOptions, logdir: string): string[] {
  const out = ['population', experiment, '--logdir', logdir];
  for (const s of o.set) out.push('--set', s);
  const pairs: Array<[string, string | undefined]> = [
    ['--config', o.config],
    ['--steps', o.steps],
    ['--seed', o.seed],
    ['--members', o.members],
    ['--mutator', o.mutator],
    ['--eval-every', o.evalEvery],
    ['--backend', o.backend],
    ['--token-file', o.tokenFile],
  ];
  for (const [k, x] of pairs) if (x !== undefined) out.push(k, x);
  return out;
}

/**
 * `--serve --spawn-members`: starts every member as a child process and replaces one that exits
 * with an error or a signal, or that the controller has not heard from (calls or heartbeats) for
 * the member timeout (it is killed first). A replacement polls with no generation: the controller
 * hands it the member's generation and last reported checkpoint, so only the steps since that
 * report are redone (the issue's "a population member that dies is replaced and its job redone").
 */
class MemberSupervisor {
  private readonly children = new Map<number, import('child_process').ChildProcess>();
  private readonly started = new Map<number, number>();
  private readonly restarts = new Map<number, number>();
  private readonly done = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;

  constructor(
    private readonly server: { address: string; liveness: Map<number, { lastSeen: number }> },
    private readonly count: number,
    private readonly spec: { command: string | null; args: string[]; maxRestarts: number },
    private readonly timeoutSeconds: number,
    private readonly log: (line: string) => void,
  ) {}

  start(onAllDone: () => void, onFailure: (e: Error) => void): void {
    for (let i = 0; i < this.count; i++) this.spawn(i, onAllDone, onFailure);
    this.timer = setInterval(() => {
      for (const [id, child] of this.children) {
        const last = Math.max(this.started.get(id) ?? 0, this.server.liveness.get(id)?.lastSeen ?? 0);
        if ((Date.now() - last) / 1000 > this.timeoutSeconds && child.exitCode === null && child.signalCode === null) {
          this.log(`[population] member ${id} (pid ${child.pid}) not heard from for ${this.timeoutSeconds} s: killing it, a replacement follows`);
          this.started.set(id, Date.now()); // one kill per timeout
          signalGroup(child, 'SIGKILL');
        }
      }
    }, 500);
  }

  private spawn(id: number, onAllDone: () => void, onFailure: (e: Error) => void): void {
    const { spawn } = require('child_process') as typeof import('child_process'); // eslint-disable-line @typescript-eslint/no-require-imports
    // each member in a process group of its own: a --member-command may start several processes
    // (a learner and its workers), and a kill must reach them all
    const child = this.spec.command
      ? spawn('sh', ['-c', this.spec.command.replaceAll('{controller}', this.server.address).replaceAll('{member}', String(id))], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(process.execPath, [process.argv[1], ...(process.argv.includes('--quiet') ? ['--quiet'] : []), ...this.spec.args, '--controller', this.server.address, '--member', String(id)], {
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
    this.children.set(id, child);
    this.started.set(id, Date.now());
    this.log(`[population] started member ${id} (pid ${child.pid})`);
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString('utf8');
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) this.log(`[member ${id}] ${l}`);
      });
    }
    child.on('exit', (code, signal) => {
      if (this.children.get(id) !== child) return;
      this.children.delete(id);
      // what the member started dies with it (a --member-command's learner and workers)
      if (code !== 0) signalGroup(child, 'SIGKILL');
      if (this.stopping) return;
      if (code === 0) {
        this.done.add(id);
        this.log(`[population] member ${id} (pid ${child.pid}) is done`);
        if (this.done.size === this.count) onAllDone();
        return;
      }
      const n = (this.restarts.get(id) ?? 0) + 1;
      this.restarts.set(id, n);
      if (n > this.spec.maxRestarts) {
        onFailure(new Error(`member ${id} died ${n} times (last: ${signal ?? `exit code ${code}`}); giving up (--max-restarts ${this.spec.maxRestarts})`));
        return;
      }
      this.log(`[population] member ${id} (pid ${child.pid}) died (${signal ?? `exit code ${code}`}); starting a replacement (${n}/${this.spec.maxRestarts})`);
      setTimeout(() => {
        if (!this.stopping) this.spawn(id, onAllDone, onFailure);
      }, 300);
    });
  }

  /** Stops the supervision; members still running get SIGTERM (and SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all(
      [...this.children.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const k = setTimeout(() => signalGroup(c, 'SIGKILL'), 10000);
            c.on('exit', () => {
              clearTimeout(k);
              resolve();
            });
            signalGroup(c, 'SIGTERM');
          }),
      ),
    );
  }
}
