/**
 * The learner/worker protocol (the reference's courier calls `get_weights` / `put_grads` of
 * `distributed.py`, `AsyncLearner`, carrying `outer_train.py`'s `DataForWorker` and
 * `GradientsFromWorker`): message types and the protobuf schema used on the wire. Trees (θ, its
 * gradient) travel as core's host trees, encoded in the `.tree` format that checkpoints use
 * (`encodeHostTree`: structure, paths, shapes, little-endian data, CRC-32), and are checked
 * against the receiver's template before they become tensors.
 *
 * Learner -> worker: `GetWorkerWeights(workerId)` -> `{step, theta, outerIteration, genId}`.
 * Worker -> learner: `PutGradient(workerId, step, {thetaGrads, meanLoss, metrics})`.
 * Unroll states never leave the worker. Every message names the experiment and its config hash.
 */
import * as tf from '@tensorflow/tfjs';
import * as protobuf from 'protobufjs';
import { decodeHostTree, encodeHostTree, isHostTensor, toHostTree, treeLeavesWithPath, treeMap, type HostTree, type PyTree } from '@lopt/core';

export const PROTO_PACKAGE = 'lopt.distributed';
export const SERVICE_NAME = `${PROTO_PACKAGE}.Learner`;

export const PROTO_SOURCE = `
syntax = "proto3";
package lopt.distributed;

// A pytree of float32 tensors (θ, its gradient), in lopt's tree format (@lopt/core encodeHostTree:
// the same bytes as a checkpoint's .tree file).
message TensorTree {
  bytes lopt_tree = 1;
}

message Experiment {
  string name = 1;
  string config_hash = 2;
}

message GetWorkerWeightsRequest {
  Experiment experiment = 1;
  int64 worker_id = 2;
}

message GetWorkerWeightsResponse {
  Experiment experiment = 1;
  int64 step = 2;
  TensorTree theta = 3;
  TensorTree theta_model_state = 4;
  bool has_model_state = 5;
  int64 outer_iteration = 6;
  string gen_id = 7;
  // the learner reached its step count: the worker exits
  bool finished = 8;
  // sync mode: this worker already submitted for this step; ask again
  bool wait = 9;
  int64 num_workers = 10;
}

message PutGradientRequest {
  Experiment experiment = 1;
  int64 worker_id = 2;
  // the step of the weights the gradient was computed with
  int64 step = 3;
  TensorTree theta_grads = 4;
  double mean_loss = 5;
  map<string, double> metrics = 6;
  string gen_id = 7;
}

message PutGradientResponse {
  bool accepted = 1;
  // why a gradient was dropped (stale, buffer full, ...); empty when accepted
  string reason = 2;
  int64 current_step = 3;
  bool finished = 4;
}

service Learner {
  rpc GetWorkerWeights(GetWorkerWeightsRequest) returns (GetWorkerWeightsResponse);
  rpc PutGradient(PutGradientRequest) returns (PutGradientResponse);
}
`;

/** A tree in a message: core's host tree (paths, shapes, host data). */
export type WireTree = HostTree;

/** Names the experiment in every message: a learner refuses a message for another name or config hash. */
export interface ExperimentId {
  name: string;
  configHash: string;
}

/** A worker asking for the current θ (reference `distributed.py`, `AsyncLearner.get_weights`). */
export interface WeightsRequest {
  experiment: ExperimentId;
  workerId: number;
}

/**
 * The learner's θ (and model state) at `step`, with its generation id; `wait` asks a sync worker to ask
 * again, `finished` ends it.
 */
export interface WeightsReply {
  experiment: ExperimentId;
  step: number;
  theta: WireTree;
  thetaModelState: WireTree | null;
  outerIteration: number;
  genId: string;
  finished: boolean;
  wait: boolean;
  numWorkers: number;
}

/**
 * A worker's meta-gradient for the θ of `step`, with its mean loss and metrics (reference `distributed.py`,
 * `AsyncLearner.put_grads`).
 */
export interface GradientRequest {
  experiment: ExperimentId;
  workerId: number;
  step: number;
  thetaGrads: WireTree;
  meanLoss: number;
  metrics: Record<string, number>;
  genId: string;
}

/**
 * The learner's answer to a {@link GradientRequest}: accepted or not (and why), its current step, and whether
 * the run is finished.
 */
export interface PutReply {
  accepted: boolean;
  reason: string;
  currentStep: number;
  finished: boolean;
}

/** gRPC status codes used by the protocol (values of grpc.status). */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  FAILED_PRECONDITION: 9,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `status ${code}`;
}

/** An RPC failure with a gRPC status code (thrown by handlers, surfaced by clients). */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** Codes a worker should retry (learner down, restarting or overloaded). */
export function isRetryable(code: number | undefined): boolean {
  return (
    code === Status.UNAVAILABLE ||
    code === Status.DEADLINE_EXCEEDED ||
    code === Status.CANCELLED ||
    code === Status.RESOURCE_EXHAUSTED ||
    code === Status.UNKNOWN ||
    code === Status.INTERNAL
  );
}

// ---------------------------------------------------------------------------------------------
// pytree <-> wire tree

/** Host copies of every tensor leaf, with paths (one read-back per leaf). */
export async function treeToWire(tree: PyTree): Promise<WireTree> {
  for (const [path, leaf] of treeLeavesWithPath<unknown>(tree)) {
    if (!(leaf instanceof tf.Tensor)) throw new Error(`treeToWire: leaf '${path}' is not a tensor`);
  }
  return toHostTree(tree);
}

/** `path -> shape` of every tensor leaf of a template tree. */
export function treeSignature(tree: PyTree): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const [path, leaf] of treeLeavesWithPath<unknown>(tree)) {
    if (leaf instanceof tf.Tensor) m.set(path, [...leaf.shape]);
  }
  return m;
}

/**
 * Checks a wire tree against a signature: same paths, float32 tensors of the same shapes, data
 * length matching the shape. Returns an error message, or null when it matches.
 */
export function checkWireTree(wire: WireTree, sig: Map<string, number[]>, what: string): string | null {
  if (!wire || !Array.isArray(wire.paths) || !Array.isArray(wire.leaves) || wire.paths.length !== wire.leaves.length) return `${what}: missing`;
  const seen = new Set<string>();
  for (let i = 0; i < wire.paths.length; i++) {
    const path = wire.paths[i];
    const leaf = wire.leaves[i];
    const expected = sig.get(path);
    if (!expected) return `${what}: unexpected entry '${path}' (expected: ${[...sig.keys()].join(', ')})`;
    if (seen.has(path)) return `${what}: duplicate entry '${path}'`;
    seen.add(path);
    if (!isHostTensor(leaf) || leaf.dtype !== 'float32') return `${what}: '${path}' is not a float32 tensor`;
    const shape = leaf.shape;
    if (shape.length !== expected.length || shape.some((d, j) => d !== expected[j])) {
      return `${what}: '${path}' has shape [${shape.join(',')}], expected [${expected.join(',')}]`;
    }
    const size = expected.reduce((a, b) => a * b, 1);
    if (leaf.data.length !== size) return `${what}: '${path}' has ${leaf.data.length} values, shape [${expected.join(',')}] needs ${size}`;
  }
  for (const p of sig.keys()) if (!seen.has(p)) return `${what}: entry '${p}' is missing`;
  return null;
}

/** Builds tensors with the template's structure from a (checked) wire tree. */
export function wireToTree<T extends PyTree = PyTree>(wire: WireTree, template: PyTree): T {
  const byPath = new Map(wire.paths.map((p, i) => [p, wire.leaves[i]]));
  return treeMap((leaf: unknown, path: string) => {
    if (!(leaf instanceof tf.Tensor)) return leaf;
    const t = byPath.get(path);
    if (!isHostTensor(t)) throw new Error(`wire tree has no tensor '${path}'`);
    const x = tf.tensor(t.data as Float32Array, t.shape, 'float32');
    return leaf.dtype === 'float32' ? x : tf.tidy(() => x.asType(leaf.dtype));
  }, template) as T;
}

/** Number of elements and of non-finite elements. */
export function countNonFinite(wire: WireTree): { size: number; nonFinite: number } {
  let size = 0;
  let nonFinite = 0;
  for (const leaf of wire.leaves) {
    if (!isHostTensor(leaf)) continue;
    const d = leaf.data;
    size += d.length;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) nonFinite++;
  }
  return { size, nonFinite };
}

// ---------------------------------------------------------------------------------------------
// protobuf encoding

let root: protobuf.Root | null = null;

export function protoRoot(): protobuf.Root {
  if (!root) root = protobuf.parse(PROTO_SOURCE, { keepCase: false }).root;
  return root;
}

function type(name: string): protobuf.Type {
  return protoRoot().lookupType(`${PROTO_PACKAGE}.${name}`);
}

function treeToProto(t: WireTree | null): any {
  return { loptTree: t ? encodeHostTree(t) : new Uint8Array(0) };
}

function treeFromProto(p: any, what: string): WireTree {
  const bytes: Uint8Array = p?.loptTree ?? new Uint8Array(0);
  try {
    return decodeHostTree(bytes, what);
  } catch (e) {
    throw new RpcError(Status.INVALID_ARGUMENT, (e as Error).message);
  }
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, arrays: true, objects: true };

function expToProto(e: ExperimentId): any {
  return { name: e.name, configHash: e.configHash };
}
function expFromProto(p: any): ExperimentId {
  return { name: String(p?.name ?? ''), configHash: String(p?.configHash ?? '') };
}

function encode(name: string, obj: any): Buffer {
  const T = type(name);
  return Buffer.from(T.encode(T.fromObject(obj)).finish());
}

function decode(name: string, buf: Buffer): any {
  const T = type(name);
  try {
    return T.toObject(T.decode(buf), TO_OBJECT);
  } catch (e) {
    throw new RpcError(Status.INVALID_ARGUMENT, `cannot decode ${name}: ${(e as Error).message}`);
  }
}

export const codec = {
  weightsRequest: {
    encode: (m: WeightsRequest) => encode('GetWorkerWeightsRequest', { experiment: expToProto(m.experiment), workerId: m.workerId }),
    decode: (b: Buffer): WeightsRequest => {
      const o = decode('GetWorkerWeightsRequest', b);
      return { experiment: expFromProto(o.experiment), workerId: Number(o.workerId) };
    },
  },
  weightsReply: {
    encode: (m: WeightsReply) =>
      encode('GetWorkerWeightsResponse', {
        experiment: expToProto(m.experiment),
        step: m.step,
        theta: treeToProto(m.theta),
        thetaModelState: treeToProto(m.thetaModelState),
        hasModelState: m.thetaModelState !== null,
        outerIteration: m.outerIteration,
        genId: m.genId,
        finished: m.finished,
        wait: m.wait,
        numWorkers: m.numWorkers,
      }),
    decode: (b: Buffer): WeightsReply => {
      const o = decode('GetWorkerWeightsResponse', b);
      return {
        experiment: expFromProto(o.experiment),
        step: Number(o.step),
        theta: treeFromProto(o.theta, 'theta'),
        thetaModelState: o.hasModelState ? treeFromProto(o.thetaModelState, 'theta_model_state') : null,
        outerIteration: Number(o.outerIteration),
        genId: String(o.genId),
        finished: Boolean(o.finished),
        wait: Boolean(o.wait),
        numWorkers: Number(o.numWorkers),
      };
    },
  },
  gradientRequest: {
    encode: (m: GradientRequest) =>
      encode('PutGradientRequest', {
        experiment: expToProto(m.experiment),
        workerId: m.workerId,
        step: m.step,
        thetaGrads: treeToProto(m.thetaGrads),
        meanLoss: m.meanLoss,
        metrics: m.metrics,
        genId: m.genId,
      }),
    decode: (b: Buffer): GradientRequest => {
      const o = decode('PutGradientRequest', b);
      return {
        experiment: expFromProto(o.experiment),
        workerId: Number(o.workerId),
        step: Number(o.step),
        thetaGrads: treeFromProto(o.thetaGrads, 'theta_grads'),
        meanLoss: Number(o.meanLoss),
        metrics: Object.fromEntries(Object.entries(o.metrics ?? {}).map(([k, v]) => [k, Number(v)])),
        genId: String(o.genId),
      };
    },
  },
  putReply: {
    encode: (m: PutReply) => encode('PutGradientResponse', m),
    decode: (b: Buffer): PutReply => {
      const o = decode('PutGradientResponse', b);
      return { accepted: Boolean(o.accepted), reason: String(o.reason), currentStep: Number(o.currentStep), finished: Boolean(o.finished) };
    },
  },
};
