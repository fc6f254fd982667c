/**
 * Network transport on gRPC (`@grpc/grpc-js`), protobuf messages from `./protocol`. Message size
 * limits are set explicitly; TLS is optional (server cert/key, optional CA for clients).
 */
import * as fs from 'fs';
import * as grpc from '@grpc/grpc-js';
import { continuousEval, distributed } from '@lopt/training';

type CallContext = distributed.CallContext;
type LearnerClient = distributed.LearnerClient;
type LearnerHandler = distributed.LearnerHandler;
type LearnerServer = distributed.LearnerServer;
type GradientRequest = distributed.GradientRequest;
type PutReply = distributed.PutReply;
type WeightsReply = distributed.WeightsReply;
type WeightsRequest = distributed.WeightsRequest;
const { RpcError, SERVICE_NAME, Status, codec } = distributed;

export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

export interface TlsFiles {
  /** PEM certificate chain (server), or client certificate for mutual TLS */
  cert?: string;
  /** PEM private key matching `cert` */
  key?: string;
  /** PEM CA bundle: clients verify the server with it; a server given one requires client certificates */
  ca?: string;
}

/** A request that did not decode: the handler answers INVALID_ARGUMENT instead of gRPC's INTERNAL. */
const UNDECODABLE = Symbol('undecodable request');

function decodeRequest<T>(decode: (b: Buffer) => T): (b: Buffer) => T {
  return (b: Buffer) => {
    try {
      return decode(b);
    } catch (e) {
      const err = e instanceof RpcError ? e : new RpcError(Status.INVALID_ARGUMENT, `cannot decode the request: ${(e as Error).message}`);
      return { [UNDECODABLE]: err } as unknown as T;
    }
  };
}

export const SERVICE_DEFINITION: grpc.ServiceDefinition = {
  GetWorkerWeights: {
    path: `/${SERVICE_NAME}/GetWorkerWeights`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: WeightsRequest) => codec.weightsRequest.encode(m),
    requestDeserialize: decodeRequest(codec.weightsRequest.decode),
    responseSerialize: (m: WeightsReply) => codec.weightsReply.encode(m),
    responseDeserialize: (b: Buffer) => codec.weightsReply.decode(b),
  },
  PutGradient: {
    path: `/${SERVICE_NAME}/PutGradient`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: GradientRequest) => codec.gradientRequest.encode(m),
    requestDeserialize: decodeRequest(codec.gradientRequest.decode),
    responseSerialize: (m: PutReply) => codec.putReply.encode(m),
    responseDeserialize: (b: Buffer) => codec.putReply.decode(b),
  },
};

/** Continuous evaluation beside the learner (`lopt learner --eval`, `lopt eval-worker`): same server and token. */
export const EVAL_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  GetEvalWork: {
    path: `/${continuousEval.EVAL_SERVICE_NAME}/GetEvalWork`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: continuousEval.EvalWorkRequest) => continuousEval.evalCodec.workRequest.encode(m),
    requestDeserialize: decodeRequest(continuousEval.evalCodec.workRequest.decode),
    responseSerialize: (m: continuousEval.EvalWorkReply) => continuousEval.evalCodec.workReply.encode(m),
    responseDeserialize: (b: Buffer) => continuousEval.evalCodec.workReply.decode(b),
  },
  PutEvalResult: {
    path: `/${continuousEval.EVAL_SERVICE_NAME}/PutEvalResult`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: continuousEval.EvalResultRequest) => continuousEval.evalCodec.resultRequest.encode(m),
    requestDeserialize: decodeRequest(continuousEval.evalCodec.resultRequest.decode),
    responseSerialize: (m: continuousEval.EvalResultReply) => continuousEval.evalCodec.resultReply.encode(m),
    responseDeserialize: (b: Buffer) => continuousEval.evalCodec.resultReply.decode(b),
  },
};

function readPem(file: string | undefined, what: string): Buffer | null {
  if (!file) return null;
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function serverCredentials(tls?: TlsFiles): grpc.ServerCredentials {
  if (!tls || (!tls.cert && !tls.key)) {
    if (tls?.ca) throw new Error('--tls-ca on the learner needs --tls-cert and --tls-key');
    return grpc.ServerCredentials.createInsecure();
  }
  const cert = readPem(tls.cert, 'TLS certificate');
  const key = readPem(tls.key, 'TLS key');
  if (!cert || !key) throw new Error('TLS on the learner needs both --tls-cert and --tls-key');
  const ca = readPem(tls.ca, 'TLS CA');
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}

function channelCredentials(tls?: TlsFiles): grpc.ChannelCredentials {
  if (!tls || (!tls.ca && !tls.cert && !tls.key)) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(readPem(tls.ca, 'TLS CA'), readPem(tls.key, 'TLS key'), readPem(tls.cert, 'TLS certificate'));
}

function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof RpcError) return { code: e.code, details: e.message };
  return { code: Status.INTERNAL, details: `learner error: ${(e as Error)?.message ?? String(e)}` };
}

/** Serves `handler` on host:port (port 0 picks a free one; the bound port is returned). */
export async function startGrpcServer(
  handler: LearnerHandler,
  opts: { host?: string; port?: number; tls?: TlsFiles; evalHandler?: continuousEval.EvalHandler } = {},
): Promise<LearnerServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = new grpc.Server(CHANNEL_OPTIONS);
  const ctxOf = (call: grpc.ServerUnaryCall<any, any>): CallContext => {
    const auth = call.metadata.get('authorization')[0];
    return { authorization: auth === undefined ? undefined : String(auth), peer: call.getPeer() };
  };
  const unary =
    (fn: (req: any, ctx: CallContext) => Promise<any>) =>
    (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
      const undecodable = call.request?.[UNDECODABLE];
      if (undecodable) return callback(toServiceError(undecodable));
      fn(call.request, ctxOf(call)).then(
        (reply) => callback(null, reply),
        (e) => callback(toServiceError(e)),
      );
    };
  server.addService(SERVICE_DEFINITION, {
    GetWorkerWeights: unary((req, ctx) => handler.getWorkerWeights(req, ctx)),
    PutGradient: unary((req, ctx) => handler.putGradient(req, ctx)),
  });
  const evalHandler = opts.evalHandler;
  if (evalHandler) {
    server.addService(EVAL_SERVICE_DEFINITION, {
      GetEvalWork: unary((req, ctx) => evalHandler.getEvalWork(req, ctx)),
      PutEvalResult: unary((req, ctx) => evalHandler.putEvalResult(req, ctx)),
    });
  }
  return bindServer(server, host, opts.port ?? 0, serverCredentials(opts.tls));
}

/**
 * Binds `server` to host:port (0: a free port; an IPv6 host is bracketed) and returns the bound
 * address with a `close` that waits up to 2 s for calls in flight, then forces the shutdown.
 */
export async function bindServer(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials): Promise<{ address: string; port: number; close(): Promise<void> }> {
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const bound = await new Promise<number>((resolve, reject) => server.bindAsync(`${hostPart}:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return {
    address: `${hostPart}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

export interface GrpcClientOptions {
  token?: string | null;
  tls?: TlsFiles;
  /** per-call deadline in seconds (default 60) */
  deadlineSeconds?: number;
  /** TLS: the name to check the server certificate against (default: the host) */
  serverNameOverride?: string;
}

/**
 * A client of one service on the learner's gRPC server: the channel (reconnect backoff 0.2–2 s, TLS,
 * server-name override) and unary calls that carry the token and a deadline and reject with an
 * RpcError holding the gRPC status.
 */
class GrpcServiceClient<M extends string> {
  private readonly client: grpc.Client;

  constructor(
    readonly address: string,
    definition: grpc.ServiceDefinition,
    serviceName: string,
    private readonly opts: GrpcClientOptions = {},
  ) {
    const Ctor = grpc.makeGenericClientConstructor(definition, serviceName);
    const options: grpc.ChannelOptions = { ...CHANNEL_OPTIONS, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2000 };
    if (opts.serverNameOverride) options['grpc.ssl_target_name_override'] = opts.serverNameOverride;
    this.client = new Ctor(address, channelCredentials(opts.tls), options);
  }

  protected call<Req, Res>(method: M, req: Req): Promise<Res> {
    const md = new grpc.Metadata();
    if (this.opts.token) md.set('authorization', `Bearer ${this.opts.token}`);
    const deadline = new Date(Date.now() + 1000 * (this.opts.deadlineSeconds ?? 60));
    return new Promise<Res>((resolve, reject) => {
      (this.client as any)[method](req, md, { deadline }, (err: grpc.ServiceError | null, res: Res) => {
        if (err) reject(new RpcError(err.code ?? Status.UNKNOWN, err.details || err.message));
        else resolve(res);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A worker's client of a learner over gRPC: `getWorkerWeights` and `putGradient` (the reference's courier
 * client of `distributed.py`'s learner).
 */
export class GrpcLearnerClient extends GrpcServiceClient<'GetWorkerWeights' | 'PutGradient'> implements LearnerClient {
  constructor(address: string, opts: GrpcClientOptions = {}) {
    super(address, SERVICE_DEFINITION, 'Learner', opts);
  }

  getWorkerWeights(req: WeightsRequest): Promise<WeightsReply> {
    return this.call('GetWorkerWeights', req);
  }

  putGradient(req: GradientRequest): Promise<PutReply> {
    return this.call('PutGradient', req);
  }
}

/** An eval worker's client of the learner's eval chief service. */
export class GrpcEvalClient extends GrpcServiceClient<'GetEvalWork' | 'PutEvalResult'> implements continuousEval.EvalClient {
  constructor(address: string, opts: GrpcClientOptions = {}) {
    super(address, EVAL_SERVICE_DEFINITION, 'EvalChief', opts);
  }

  getEvalWork(req: continuousEval.EvalWorkRequest): Promise<continuousEval.EvalWorkReply> {
    return this.call('GetEvalWork', req);
  }

  putEvalResult(req: continuousEval.EvalResultRequest): Promise<continuousEval.EvalResultReply> {
    return this.call('PutEvalResult', req);
  }
}
