/** The gRPC transport of distributed meta-training (the learner and worker logic is in @lopt/training). See docs/distributed.md. */
export { startGrpcServer, GrpcLearnerClient, GrpcEvalClient } from './grpc';
