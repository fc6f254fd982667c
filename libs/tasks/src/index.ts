/**
 * @lopt/tasks: Task / TaskFamily batched over a leading task axis, datasets (Fashion-MNIST from
 * IDX files, CIFAR-10/100 from their binary files, noise streams), quadratics, image MLPs,
 * convnets, MLP-Mixers and Vision Transformers. Importing the lib registers every task as a plugin
 * of kind 'task' and every family as one of kind 'task_family'.
 *
 * @packageDocumentation
 */
export * from './browser';
export * from './node';
