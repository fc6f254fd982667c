/**
 * The population controller over gRPC: the reference binds `maybe_get_worker_data` and `set_eval`
 * of its `PopulationController` on a courier server (`population.start_courier_server`) that every
 * learner of the population calls. Here: a gRPC service with those two methods, JSON messages (the
 * payloads are small: ids, steps, checkpoint paths, hyper-parameters; NaN travels tagged), the
 * same `authorization: Bearer <token>` check as the learner's service, and the experiment's config
 * hash on every call, so a member started with another config is refused instead of corrupting
 * the population. Members retry while the controller is unreachable (it may be restarting from its
 * state file).
 */
import { randomBytes } from 'crypto';
import * as grpc from '@grpc/grpc-js';
import { distributed, population } from '@lopt/training';
import { bindServer } from './grpc';

const { RpcError, Status, tokensEqual } = distributed;
type ActiveWorker = population.ActiveWorker;

export const POPULATION_SERVICE = 'lopt.population.v1.PopulationController';

export interface MemberId {
  /** experiment name and config hash (`resumeHash`) */
  experiment: { name: string; configHash: string };
  /**
   * The member process's random id (absent from older members): the controller serves the
   * newest process of a member only, so a replaced one that wakes up cannot report twice.
   */
  incarnation?: string;
}
export interface HeartbeatRequest extends MemberId {
  workerId: number;
}
export interface PollRequest extends MemberId {
  workerId: number;
  generationId: string | null;
  step: number | null;
  params: unknown;
  metaParams: unknown;
}
export interface EvalRequest extends MemberId {
  workerId: number;
  generationId: string;
  step: number;
  params: unknown;
  value: number | null;
}

const json = {
  encode: (m: unknown) => Buffer.from(population.toJsonText(m), 'utf8'),
  decode: (b: Buffer) => population.fromJsonText(b.toString('utf8')),
};

const method = (name: string): grpc.MethodDefinition<unknown, unknown> => ({
  path: `/${POPULATION_SERVICE}/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.encode,
  requestDeserialize: json.decode,
  responseSerialize: json.encode,
  responseDeserialize: json.decode,
});

export const POPULATION_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  MaybeGetWorkerData: method('MaybeGetWorkerData'),
  SetEval: method('SetEval'),
  Heartbeat: method('Heartbeat'),
};

/** When the controller last heard from each member, and from which of its processes. */
export interface MemberLiveness {
  lastSeen: number;
  incarnation: string | null;
}

export interface PopulationServer {
  readonly address: string;
  readonly port: number;
  /** Per member id: when it was last heard from (any call, heartbeats included). */
  readonly liveness: Map<number, MemberLiveness>;
  close(): Promise<void>;
}

/** Serves `controller` for members of the experiment `experiment` (port 0 picks a free one). */
export async function startPopulationServer(
  controller: population.PopulationController,
  opts: { experiment: MemberId['experiment']; host?: string; port?: number; token?: string | null; log?: (line: string) => void },
): Promise<PopulationServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = new grpc.Server();
  const liveness = new Map<number, MemberLiveness>();
  // A member process that starts (polls with no generation) becomes the member's current process;
  // calls from an earlier one (a replaced member that was only stalled) are refused from then on.
  const seen = (r: { workerId: number; incarnation?: string }, fresh: boolean) => {
    if (!Number.isSafeInteger(r.workerId) || r.workerId < 0) throw new RpcError(Status.INVALID_ARGUMENT, `workerId must be a non-negative integer, got ${r.workerId}`);
    const inc = r.incarnation ?? null;
    const cur = liveness.get(r.workerId);
    if (cur && cur.incarnation !== null && inc !== null && inc !== cur.incarnation && !fresh) {
      throw new RpcError(Status.FAILED_PRECONDITION, `member ${r.workerId} was replaced by a newer process (${cur.incarnation}); this one (${inc}) must stop`);
    }
    if (fresh && cur && cur.incarnation !== inc) opts.log?.(`[population] member ${r.workerId}: new process ${inc ?? '(unnamed)'}${cur.incarnation ? ` replaces ${cur.incarnation}` : ''}`);
    liveness.set(r.workerId, { lastSeen: Date.now(), incarnation: inc ?? cur?.incarnation ?? null });
  };
  const check = (call: grpc.ServerUnaryCall<any, any>) => {
    if (opts.token) {
      const auth = String(call.metadata.get('authorization')[0] ?? '');
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (!m || !tokensEqual(m[1].trim(), opts.token)) {
        opts.log?.(`[population] refused a call from ${call.getPeer()}: ${auth ? 'invalid token' : 'no token'}`);
        throw new RpcError(Status.UNAUTHENTICATED, `unauthenticated: ${auth ? 'invalid token' : 'missing authorization metadata (authorization: Bearer <token>)'}`);
      }
    }
    const req = call.request as MemberId | undefined;
    const e = req?.experiment;
    if (!e || e.name !== opts.experiment.name || e.configHash !== opts.experiment.configHash) {
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        `this controller runs experiment '${opts.experiment.name}' (config hash ${opts.experiment.configHash}); the member runs '${e?.name}' (${e?.configHash}): start it with the same experiment and overrides`,
      );
    }
  };
  const unary = (fn: (req: any) => unknown) => (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
    try {
      check(call);
      callback(null, fn(call.request));
    } catch (e) {
      const code = e instanceof RpcError ? e.code : e instanceof RangeError ? Status.INVALID_ARGUMENT : Status.INTERNAL;
      callback({ code, details: (e as Error).message });
    }
  };
  server.addService(POPULATION_SERVICE_DEFINITION, {
    MaybeGetWorkerData: unary((r: PollRequest) => {
      seen(r, r.generationId === null);
      return { worker: controller.maybeGetWorkerData(r.workerId, r.generationId, r.step, r.params, r.metaParams) };
    }),
    SetEval: unary((r: EvalRequest) => {
      seen(r, false);
      controller.setEval(r.workerId, r.generationId, r.step, r.params, r.value);
      return {};
    }),
    Heartbeat: unary((r: HeartbeatRequest) => {
      seen(r, false);
      return {};
    }),
  });
  const bound = await bindServer(server, host, opts.port ?? 0, grpc.ServerCredentials.createInsecure());
  return { address: bound.address, port: bound.port, liveness, close: () => bound.close() };
}

/** A member's side: the `PopulationService` of a controller at `address`. */
export class PopulationGrpcClient implements population.PopulationService {
  private readonly client: grpc.Client;
  private waiting = false;
  /** This process's id towards the controller (see `MemberId.incarnation`). */
  readonly incarnation = randomBytes(6).toString('hex');
  private heartbeat: NodeJS.Timeout | null = null;

  /**
   * `memberId`: the member this process runs; it then sends a heartbeat every `heartbeatSeconds`
   * (default 2), so the controller can tell a member that is busy training from a dead one.
   */
  constructor(
    readonly address: string,
    private readonly opts: {
      experiment: MemberId['experiment'];
      token?: string | null;
      retrySeconds?: number;
      deadlineSeconds?: number;
      log?: (line: string) => void;
      memberId?: number;
      heartbeatSeconds?: number;
    },
  ) {
    const Ctor = grpc.makeGenericClientConstructor(POPULATION_SERVICE_DEFINITION, 'PopulationController');
    this.client = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2000 });
    if (opts.memberId !== undefined) {
      const req: HeartbeatRequest = { experiment: opts.experiment, incarnation: this.incarnation, workerId: opts.memberId };
      this.heartbeat = setInterval(() => void this.once('Heartbeat', req).catch(() => undefined), 1000 * (opts.heartbeatSeconds ?? 2));
      this.heartbeat.unref();
    }
  }

  private once<T>(name: string, req: unknown): Promise<T> {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    const deadline = new Date(Date.now() + 1000 * (this.opts.deadlineSeconds ?? 30));
    return new Promise<T>((resolve, reject) =>
      (this.client as any)[name](req, md, { deadline }, (err: grpc.ServiceError | null, res: T) => (err ? reject(new RpcError(err.code ?? Status.UNKNOWN, err.details || err.message)) : resolve(res))),
    );
  }

  /** Calls `name`, retrying while the controller is unreachable (up to retrySeconds, default 120). */
  private async call<T>(name: string, req: unknown): Promise<T> {
    const until = Date.now() + 1000 * (this.opts.retrySeconds ?? 120);
    for (;;) {
      try {
        const res = await this.once<T>(name, req);
        if (this.waiting) this.opts.log?.(`[population] controller at ${this.address} is back`);
        this.waiting = false;
        return res;
      } catch (e) {
        const transient = e instanceof RpcError && (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED);
        if (!transient || Date.now() > until) throw e;
        if (!this.waiting) this.opts.log?.(`[population] controller at ${this.address} unreachable (${(e as Error).message}); retrying`);
        this.waiting = true;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  async maybeGetWorkerData(workerId: number, generationId: string | null, step: number | null, params: unknown, metaParams: unknown): Promise<ActiveWorker | null> {
    const req: PollRequest = { experiment: this.opts.experiment, incarnation: this.incarnation, workerId, generationId, step, params, metaParams };
    return (await this.call<{ worker: ActiveWorker | null }>('MaybeGetWorkerData', req)).worker ?? null;
  }

  async setEval(workerId: number, generationId: string, step: number, params: unknown, value: number | null): Promise<void> {
    const req: EvalRequest = { experiment: this.opts.experiment, incarnation: this.incarnation, workerId, generationId, step, params, value };
    await this.call('SetEval', req);
  }

  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.client.close();
  }
}
