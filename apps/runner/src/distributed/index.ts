/** Distributed meta-training: a learner and workers over gRPC (or in process). See docs/distributed.md. */
export * from './protocol';
export * from './buffer';
export * from './transport';
export * from './grpc';
export * from './experiment';
export * from './learner';
export * from './worker';
