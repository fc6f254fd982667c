/**
 * Distributed meta-training without a transport: the learner (`DistributedLearner`, a
 * `LearnerHandler`), the worker loop (`runWorker` over a `LearnerClient`), the protocol messages and
 * the in-process transport. The gRPC transport is in @lopt/runner. See docs/distributed.md.
 */
export {
  PROTO_PACKAGE,
  SERVICE_NAME,
  PROTO_SOURCE,
  Status,
  statusName,
  RpcError,
  isRetryable,
  treeToWire,
  treeSignature,
  checkWireTree,
  wireToTree,
  countNonFinite,
  protoRoot,
  codec,
} from './protocol';
export type { WireTree, ExperimentId, WeightsRequest, WeightsReply, GradientRequest, PutReply } from './protocol';
export { GradientGate, AsyncGradientBuffer, SyncGradientSlots, batchMetrics } from './buffer';
export type { PutOutcome, Entry, Batch } from './buffer';
export { tokensEqual, requireToken, InProcessTransport } from './transport';
export type { CallContext, LearnerHandler, LearnerClient, LearnerServer } from './transport';
export { UNHASHED_FIELDS, workerConfigHash, buildExperiment } from './experiment';
export type { ExperimentSpec } from './experiment';
export { DistributedLearner } from './learner';
export type { LearnerMode, LearnerOptions, LearnerResult } from './learner';
export { WorkerRefusedError, runWorker } from './worker';
export type { WorkerOptions, WorkerResult } from './worker';
