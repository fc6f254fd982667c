/**
 * Distributed continuous evaluation without a transport: the learner hosts the chief
 * (`EvalChiefService`, served next to the learner's own service on the same gRPC server and token)
 * and `lopt eval-worker` processes run `runEvalWorker` against it (reference `task_group_server`'s
 * courier calls `get_work(worker_id)` / `finish_work(worker_id, result)`).
 *
 * A job carries θ itself (core's tree bytes), so a worker needs no shared filesystem. A worker that
 * comes back under its id resumes its job; one not heard from for `leaseSeconds` loses it to the
 * queue (its late result, if any, is still accepted once and a duplicate ignored).
 *
 * Wire format of the messages (the bytes of a gRPC call): a little-endian uint32 length, that many
 * bytes of JSON, then the θ tree bytes when there are any.
 */
import { serializeTree, loadParams, treeDispose, type Registry } from '@lopt/core';
import { RpcError, Status, isRetryable, statusName } from '../distributed/protocol';
import { tokensEqual, type CallContext } from '../distributed/transport';
import type { MetaTrainingConfig } from '../experiment_config';
import { EvalChief, type EvalJob, type WrittenGroup } from './chief';
import { ContinuousEvalSchema, evaluationSet } from './evaluation_set';
import type { EvalJobResult } from './metrics';
import { EvalJobRunner } from './worker';

/** gRPC service name of the eval chief served next to the learner. */
export const EVAL_SERVICE_NAME = 'lopt.distributed.EvalChief';

/** An eval worker asking for work (reference `task_group_server`, `get_work(worker_id)`). */
export interface EvalWorkRequest {
  workerId: string;
}
/** The chief's answer to {@link EvalWorkRequest}: a job and its θ, nothing yet, or `finished`. */
export interface EvalWorkReply {
  job: EvalJob | null;
  /** θ of the job's checkpoint (core's tree format); null without a job. */
  thetaTree: Uint8Array | null;
  /** The run is over and every checkpoint evaluated: the worker exits. */
  finished: boolean;
}
/**
 * An eval worker returning a job's result (reference `task_group_server`, `finish_work(worker_id, result)`).
 */
export interface EvalResultRequest {
  workerId: string;
  jobId: string;
  result: EvalJobResult;
}
/** Whether the chief accepted a result (false for a duplicate, or a job it no longer has). */
export interface EvalResultReply {
  accepted: boolean;
}

function pack(json: unknown, bytes: Uint8Array | null = null): Buffer {
  const j = Buffer.from(JSON.stringify(json), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32LE(j.length, 0);
  return Buffer.concat([head, j, bytes ?? Buffer.alloc(0)]);
}

function unpack(b: Uint8Array): { json: any; bytes: Uint8Array } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < 4) throw new RpcError(Status.INVALID_ARGUMENT, 'eval message too short');
  const n = buf.readUInt32LE(0);
  if (4 + n > buf.length) throw new RpcError(Status.INVALID_ARGUMENT, 'eval message truncated');
  let json: any;
  try {
    json = JSON.parse(buf.subarray(4, 4 + n).toString('utf8'));
  } catch (e) {
    throw new RpcError(Status.INVALID_ARGUMENT, `eval message: bad JSON (${(e as Error).message})`);
  }
  return { json, bytes: new Uint8Array(buf.subarray(4 + n)) };
}

const str = (x: unknown, what: string): string => {
  if (typeof x !== 'string' || !x) throw new RpcError(Status.INVALID_ARGUMENT, `eval message: ${what} must be a non-empty string`);
  return x;
};

/** Encoders/decoders of the four eval messages. */
export const evalCodec = {
  workRequest: {
    encode: (m: EvalWorkRequest): Buffer => pack({ workerId: m.workerId }),
    decode: (b: Uint8Array): EvalWorkRequest => ({ workerId: str(unpack(b).json?.workerId, 'workerId') }),
  },
  workReply: {
    encode: (m: EvalWorkReply): Buffer => pack({ job: m.job, finished: m.finished, hasTheta: m.thetaTree !== null }, m.thetaTree),
    decode: (b: Uint8Array): EvalWorkReply => {
      const { json, bytes } = unpack(b);
      return { job: json.job ?? null, finished: !!json.finished, thetaTree: json.hasTheta ? bytes : null };
    },
  },
  resultRequest: {
    encode: (m: EvalResultRequest): Buffer => pack(m),
    decode: (b: Uint8Array): EvalResultRequest => {
      const { json } = unpack(b);
      if (!json?.result || typeof json.result !== 'object') throw new RpcError(Status.INVALID_ARGUMENT, 'eval message: result missing');
      return { workerId: str(json.workerId, 'workerId'), jobId: str(json.jobId, 'jobId'), result: json.result };
    },
  },
  resultReply: {
    encode: (m: EvalResultReply): Buffer => pack(m),
    decode: (b: Uint8Array): EvalResultReply => ({ accepted: !!unpack(b).json?.accepted }),
  },
};

/** What the learner serves for eval workers. */
export interface EvalHandler {
  getEvalWork(req: EvalWorkRequest, ctx: CallContext): Promise<EvalWorkReply>;
  putEvalResult(req: EvalResultRequest, ctx: CallContext): Promise<EvalResultReply>;
}

/** What an eval worker calls. */
export interface EvalClient {
  readonly address: string;
  getEvalWork(req: EvalWorkRequest): Promise<EvalWorkReply>;
  putEvalResult(req: EvalResultRequest): Promise<EvalResultReply>;
  close(): void;
}

/** Options of {@link EvalChiefService}: bearer token, job lease, clock and a callback for refused calls. */
export interface EvalChiefServiceOptions {
  /** Every call must carry `authorization: Bearer <token>` (the learner's token). */
  token?: string | null;
  /** A worker not heard from this long loses its job to the queue (default 3600 s). */
  leaseSeconds?: number;
  onReject?: (why: string) => void;
  now?: () => number;
}

/** The chief served to remote eval workers. */
export class EvalChiefService implements EvalHandler {
  /** Set by the host when the run is over and every checkpoint is written: workers then exit. */
  finished = false;
  /** When an eval worker last called (or the service started): see {@link hostEvalChief}'s idle warning. */
  lastCallAt: number;
  private readonly lastSeen = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    readonly chief: EvalChief,
    private readonly o: EvalChiefServiceOptions = {},
  ) {
    this.now = o.now ?? Date.now;
    this.lastCallAt = this.now();
    // workers that held a job when an earlier learner stopped get a lease from now on, so a job of
    // one that never comes back is redone
    for (const w of chief.holders) this.lastSeen.set(w, this.now());
  }

  private check(ctx: CallContext): void {
    const token = this.o.token;
    if (!token) return;
    const auth = ctx.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!m || !tokensEqual(m[1].trim(), token)) {
      const why = auth ? 'invalid token' : 'missing authorization metadata (authorization: Bearer <token>)';
      this.o.onReject?.(`${why}${ctx.peer ? ` from ${ctx.peer}` : ''}`);
      throw new RpcError(Status.UNAUTHENTICATED, `unauthenticated: ${why}`);
    }
  }

  /** Workers whose lease ran out give their job back. */
  private async expireLeases(): Promise<void> {
    const lease = (this.o.leaseSeconds ?? 3600) * 1000;
    const t = this.now();
    for (const [w, seen] of this.lastSeen) {
      if (t - seen > lease) {
        this.lastSeen.delete(w);
        await this.chief.releaseWorker(w);
      }
    }
  }

  async getEvalWork(req: EvalWorkRequest, ctx: CallContext): Promise<EvalWorkReply> {
    this.check(ctx);
    this.lastCallAt = this.now();
    this.lastSeen.set(req.workerId, this.now());
    await this.expireLeases();
    this.lastSeen.set(req.workerId, this.now());
    const job = await this.chief.getWork(req.workerId);
    if (!job) return { job: null, thetaTree: null, finished: this.finished && this.chief.pendingGroups === 0 };
    const { theta } = await loadParams(job.paramsPath);
    try {
      return { job, thetaTree: serializeTree(theta), finished: false };
    } finally {
      treeDispose(theta);
    }
  }

  async putEvalResult(req: EvalResultRequest, ctx: CallContext): Promise<EvalResultReply> {
    this.check(ctx);
    this.lastSeen.delete(req.workerId);
    return { accepted: await this.chief.finishWork(req.workerId, req.jobId, req.result) };
  }
}

/**
 * Options of {@link hostEvalChief}: the learner's log directory and config, token, job lease and callbacks.
 */
export interface HostedEvalOptions {
  logdir: string;
  config: MetaTrainingConfig;
  token?: string | null;
  leaseSeconds?: number;
  log?: (line: string) => void;
  /** Called once per checkpoint written (EvalChiefOptions.onWritten). */
  onWritten?: (group: WrittenGroup) => void;
  /** Say so (every this many seconds) while jobs wait and no eval worker calls (default 60). */
  idleWarningSeconds?: number;
  now?: () => number;
}

/**
 * The chief of `lopt learner --eval`: opens (or resumes) it, polls the learner's checkpoints every
 * `eval.pollSeconds`; `finish()` takes the final checkpoint and resolves once every checkpoint is
 * written (workers are then told to exit).
 */
export async function hostEvalChief(
  o: HostedEvalOptions,
): Promise<{ service: EvalChiefService; chief: EvalChief; poll: (force?: boolean) => Promise<number | null | void>; finish: (signal?: AbortSignal) => Promise<void>; close: () => Promise<void> }> {
  const cfg = o.config.eval ?? ContinuousEvalSchema.parse({});
  const chief = await EvalChief.open({
    logdir: o.logdir,
    config: cfg,
    evaluationSet: evaluationSet(cfg, o.config.tasks),
    learnedOptimizer: o.config.learnedOptimizer,
    log: o.log,
    onWritten: o.onWritten,
  });
  const now = o.now ?? Date.now;
  const service = new EvalChiefService(chief, { token: o.token, leaseSeconds: o.leaseSeconds, onReject: (why) => o.log?.(`[eval chief] refused a call: ${why}`), now });
  const poll = (force = false) => chief.poll({ force }).catch((e) => o.log?.(`[eval chief] ${(e as Error).message}`));
  // jobs that nobody takes: a run (or a `population.value: eval` member) would wait without a word
  const idleMs = (o.idleWarningSeconds ?? 60) * 1000;
  let warnedAt = 0;
  const warnIfIdle = () => {
    const t = now();
    if (chief.queuedJobs === 0 || t - service.lastCallAt < idleMs || t - warnedAt < idleMs) return;
    warnedAt = t;
    o.log?.(
      `[eval chief] ${chief.queuedJobs} evaluation job${chief.queuedJobs > 1 ? 's' : ''} waiting, and no eval worker has asked for work for ${Math.round((t - service.lastCallAt) / 1000)} s: ` +
        `start one with \`lopt eval-worker --learner HOST:PORT\` (this learner's address)`,
    );
  };
  const timer = setInterval(() => {
    void poll();
    warnIfIdle();
  }, cfg.pollSeconds * 1000);
  timer.unref();
  return {
    service,
    chief,
    poll,
    finish: async (signal) => {
      await poll(true);
      while (chief.pendingGroups > 0 && !signal?.aborted) await new Promise((r) => setTimeout(r, 200));
      service.finished = true;
    },
    close: async () => {
      clearInterval(timer);
      await chief.settle();
    },
  };
}

/**
 * Options of {@link runEvalWorker}: the chief client, worker id, registry to build tasks from, and retry and
 * idle timings.
 */
export interface EvalWorkerOptions {
  client: EvalClient;
  workerId: string;
  registry: Registry;
  log?: (line: string) => void;
  /** Exit with an error when the learner stays unreachable this long (default 600 s). */
  giveUpSeconds?: number;
  /** Wait between asks when there is no job (default 0.5 s, the reference's). */
  idleSeconds?: number;
  /** Stop after this many jobs (tests). */
  maxJobs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The eval worker loop (reference `connect_to_server_and_do_tasks`); resolves to the jobs done. */
export async function runEvalWorker(o: EvalWorkerOptions): Promise<{ jobs: number }> {
  const log = o.log ?? (() => {});
  const runner = new EvalJobRunner(o.registry);
  let jobs = 0;
  let unreachableSince: number | null = null;
  /** A call, retried while the learner is unreachable (restarting), up to giveUpSeconds. */
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        const r = await fn();
        unreachableSince = null;
        return r;
      } catch (e) {
        const code = (e as RpcError).code;
        if (!(e instanceof RpcError) || !isRetryable(code)) throw e;
        unreachableSince ??= Date.now();
        if ((Date.now() - unreachableSince) / 1000 > (o.giveUpSeconds ?? 600)) {
          throw new Error(`eval worker ${o.workerId}: the learner at ${o.client.address} stayed unreachable (${statusName(code)}) for ${o.giveUpSeconds ?? 600} s`);
        }
        await sleep(500);
      }
    }
  };
  try {
    while (o.maxJobs === undefined || jobs < o.maxJobs) {
      const reply = await call(() => o.client.getEvalWork({ workerId: o.workerId }));
      if (reply.finished) {
        log(`[eval worker ${o.workerId}] the run is over; ${jobs} jobs done`);
        break;
      }
      if (!reply.job) {
        await sleep((o.idleSeconds ?? 0.5) * 1000);
        continue;
      }
      const job = reply.job;
      const result = await runner.run(job, reply.thetaTree ?? undefined);
      await call(() => o.client.putEvalResult({ workerId: o.workerId, jobId: job.id, result }));
      jobs++;
      log(`[eval worker ${o.workerId}] ${job.task.name} on params_${job.group} (outer step ${job.step})${result.error ? `: failed: ${result.error}` : ''}`);
    }
  } finally {
    runner.dispose();
  }
  return { jobs };
}
