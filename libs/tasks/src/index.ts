/**
 * @lopt/tasks: Task / TaskFamily batched over a leading task axis, datasets (Fashion-MNIST from
 * IDX files, noise streams), quadratics and image MLPs. Importing the lib registers every task
 * and family as a plugin of kind 'task'.
 */
export * from './base';
export * from './task';
export * from './datasets/base';
export * from './datasets/idx';
export * from './datasets/fashion_mnist';
export * from './quadratics';
export * from './image_mlp';
export * from './native';
