/**
 * @lopt/optimizers: Optimizer / LearnedOptimizer, hand-designed optax-style optimizers and
 * schedules, learnable-hyper-parameter optimizers, MLPLOpt and AdafacMLPLOpt. Importing this
 * module registers every optimizer plugin.
 */
export * from './base';
export * from './common';
export * from './schedules';
export * from './transforms';
export * from './optax_opts';
export * from './wrappers';
export * from './per_param_mlp';
export * from './mlp_lopt';
export * from './native';
export * from './learnable';
export * from './adafac_mlp_lopt';
export * from './tfjs_adapter';
