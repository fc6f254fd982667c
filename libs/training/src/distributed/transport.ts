/**
 * The transport between learner and workers, behind a small interface with two implementations:
 * in-process (`InProcessTransport`: direct calls, messages still cross as host copies) and network
 * (`./grpc`: gRPC + protobuf). Authentication is shared: with a token every call must carry
 * `authorization: Bearer <token>` or is refused with UNAUTHENTICATED.
 */
import { timingSafeEqual } from 'crypto';
import { GradientRequest, PutReply, RpcError, Status, WeightsReply, WeightsRequest, codec } from './protocol';

/** Metadata of an incoming call: its `authorization` value and the peer address. */
export interface CallContext {
  /** the `authorization` metadata value, if any */
  authorization?: string;
  /** peer address, for logs */
  peer?: string;
}

/** What the learner serves. Handlers throw RpcError for rejected calls. */
export interface LearnerHandler {
  getWorkerWeights(req: WeightsRequest, ctx: CallContext): Promise<WeightsReply>;
  putGradient(req: GradientRequest, ctx: CallContext): Promise<PutReply>;
}

/** What a worker calls. Errors are RpcErrors carrying the gRPC status code. */
export interface LearnerClient {
  readonly address: string;
  getWorkerWeights(req: WeightsRequest): Promise<WeightsReply>;
  putGradient(req: GradientRequest): Promise<PutReply>;
  close(): void;
}

/** A running learner server (gRPC or in-process): its address and port, and `close()`. */
export interface LearnerServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Constant-time comparison of two tokens (no timing leak of a shared prefix). */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Wraps a handler so that every call must carry the token; refusals are reported to `onReject`. */
export function requireToken(handler: LearnerHandler, token: string | null | undefined, onReject?: (why: string) => void): LearnerHandler {
  if (!token) return handler;
  const check = (ctx: CallContext) => {
    const auth = ctx.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (!m || !tokensEqual(m[1].trim(), token)) {
      const why = auth ? 'invalid token' : 'missing authorization metadata (authorization: Bearer <token>)';
      onReject?.(`${why}${ctx.peer ? ` from ${ctx.peer}` : ''}`);
      throw new RpcError(Status.UNAUTHENTICATED, `unauthenticated: ${why}`);
    }
  };
  return {
    getWorkerWeights: async (req, ctx) => {
      check(ctx);
      return handler.getWorkerWeights(req, ctx);
    },
    putGradient: async (req, ctx) => {
      check(ctx);
      return handler.putGradient(req, ctx);
    },
  };
}

/**
 * In-process transport: a client that calls the handler directly. Messages go through the same
 * protobuf encoding as the network (so nothing is shared between learner and worker by reference).
 */
export class InProcessTransport implements LearnerClient {
  readonly address = 'in-process';
  private closed = false;

  constructor(
    private readonly handler: LearnerHandler,
    private readonly opts: { token?: string | null } = {},
  ) {}

  private ctx(): CallContext {
    if (this.closed) throw new RpcError(Status.UNAVAILABLE, 'in-process transport is closed');
    return { authorization: this.opts.token ? `Bearer ${this.opts.token}` : undefined, peer: 'in-process' };
  }

  async getWorkerWeights(req: WeightsRequest): Promise<WeightsReply> {
    const ctx = this.ctx();
    const wireReq = codec.weightsRequest.decode(codec.weightsRequest.encode(req));
    const reply = await this.handler.getWorkerWeights(wireReq, ctx);
    return codec.weightsReply.decode(codec.weightsReply.encode(reply));
  }

  async putGradient(req: GradientRequest): Promise<PutReply> {
    const ctx = this.ctx();
    const wireReq = codec.gradientRequest.decode(codec.gradientRequest.encode(req));
    const reply = await this.handler.putGradient(wireReq, ctx);
    return codec.putReply.decode(codec.putReply.encode(reply));
  }

  close(): void {
    this.closed = true;
  }
}
