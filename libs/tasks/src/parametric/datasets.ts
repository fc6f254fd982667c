/**
 * The image datasets the parametric families build on: by lopt-ts name in a family's options
 * (`datasetName`), and by the reference's function name (image.py's `<name>_datasets(batch_size,
 * image_size)`) in a sampled configuration. Fashion-MNIST is offline; MNIST (also downloaded to a
 * cache when the network allows), CIFAR-10/100 and imagenet16 come from `$LOPT_DATA_DIR` and are
 * read on the first batch (which names the folder and files when missing).
 */
import type { Datasets } from '../base';
import { cifar10Datasets, cifar100Datasets } from '../datasets/cifar';
import { imageDatasets } from '../datasets/fashion_mnist';
import { imagenetDatasets } from '../datasets/imagenet';
import { mnistDatasets } from '../datasets/mnist';
import { registerConfigurable } from './cfgobject';

/** The image datasets the parametric families can use, by lopt-ts name. */
export const PARAMETRIC_DATASET_NAMES = ['fashion_mnist', 'cifar10', 'cifar100', 'mnist', 'imagenet16'] as const;
/** One of {@link PARAMETRIC_DATASET_NAMES}. */
export type ParametricDatasetName = (typeof PARAMETRIC_DATASET_NAMES)[number];

/**
 * The datasets of a parametric family: Fashion-MNIST, CIFAR-10, CIFAR-100, MNIST or 16x16 ImageNet at `batchSize` and `imageSize`
 * (reference `tasks/datasets/image.py`, `<name>_datasets`).
 */
export function parametricDatasets(name: ParametricDatasetName, batchSize: number, imageSize: [number, number]): Datasets {
  if (name === 'cifar10') return cifar10Datasets(batchSize, imageSize);
  if (name === 'cifar100') return cifar100Datasets(batchSize, imageSize);
  if (name === 'mnist') return mnistDatasets(batchSize, imageSize);
  if (name === 'imagenet16') return imagenetDatasets(16, batchSize, imageSize);
  return imageDatasets(name, batchSize, imageSize);
}

/** The reference's dataset function names lopt-ts can build, and their lopt-ts names. */
export const DATASET_FUNCTIONS: Readonly<Record<string, ParametricDatasetName>> = {
  fashion_mnist_datasets: 'fashion_mnist',
  cifar10_datasets: 'cifar10',
  cifar100_datasets: 'cifar100',
  mnist_datasets: 'mnist',
  imagenet16_datasets: 'imagenet16',
};

for (const [fn, name] of Object.entries(DATASET_FUNCTIONS)) {
  registerConfigurable(fn, (kw) => parametricDatasets(name, Number(kw.batch_size), kw.image_size as [number, number]));
}

/** The number of classes a datasets object reports (`extraInfo.num_classes`). */
export function numClassesOf(datasets: Datasets): number {
  const n = Number(datasets.extraInfo?.num_classes);
  if (!Number.isInteger(n) || n <= 0) throw new Error('the datasets do not report num_classes; pass numClasses');
  return n;
}
