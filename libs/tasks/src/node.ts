/**
 * @lopt/tasks' Node-only part: the datasets read from files (IDX, Fashion-MNIST, CIFAR, the text
 * corpora, downloads, MNIST, downsampled ImageNet) and the tasks and families built on them (image
 * MLPs, autoencoders, convnets, ResNets, language models). `@lopt/tasks` in Node exports these too; `@lopt/tasks/node` only these.
 */
export { downloadFiles, downloadResumable, sha256File } from './datasets/download';
export type { ResumableDownloadOptions } from './datasets/download';
export { LM1B_URL, LM1B_ARCHIVE_CHECKSUM, LM1B_TFDS_EXAMPLES, pyStrip, pyTextLines, tfdsOrderHash, HashOrderedWriter, prepareLm1b } from './datasets/lm1b';
export type { PrepareLm1bOptions, PreparedCorpus } from './datasets/lm1b';
export { WIKIPEDIA_TFDS_NAME, prepareWikipedia } from './datasets/wikipedia';
export type { PrepareWikipediaOptions } from './datasets/wikipedia';
export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxFormatError, parseIdx, readIdxFile, readIdxImagesAndLabels, encodeIdx, decodedIdxCachePath } from './datasets/idx';
export type { IdxArray } from './datasets/idx';
export { FASHION_MNIST_FILES, FASHION_MNIST_URLS, SYSTEM_FASHION_MNIST_DIR, fashionMnistCacheDir, fashionMnistSearchDirs, DatasetNotFoundError, findFashionMnistDir, loadFashionMnistRaw, fashionMnistSplits, fashionMnistDatasets, imageDatasets, preprocessedFashionMnist, preprocessedFashionMnistCachePath, FASHION_MNIST_SPLIT_SIZES, type PreprocessedFashionMnist } from './datasets/fashion_mnist';
export { ImageMLPSchema, ImageMLPTask, ImageMLP_FashionMnist8_Relu32, ImageMLP_FashionMnist16_Relu32, ImageMLP_FashionMnist32_Relu32, ImageMLP_FashionMnist_Relu128x128, ImageMLP_Mnist_128x128x128_Relu, ImageMLP_Imagenet16_Relu256x256x256 } from './image_mlp';
export type { Activation, MatmulMode, ImageMLPConfig } from './image_mlp';
export { initSampledMlp, stackHaikuRows, SampledTask, activateRows, classificationNormalizer, sampleActivationAndInitializer, activationAndInitializerConfigs, sampleWithSwitches, switchedConfigs, ParametricImageMLPSchema, ParametricImageMLPTask, ParametricImageMLP, sampleImageMlp, parametricImageMlpFromConfig, SampledImageMLPSchema, sampledImageMlp } from './parametric/image_mlp';
export type { ParametricImageMLPOptions, ActivationAndInitializer } from './parametric/image_mlp';
export { ImageMLPAESchema, ImageMLPAETask, ImageMLPAE_FashionMnist_128x32x128_bs128, ImageMLPAE_Mnist_128x32x128_bs128 } from './image_mlp_ae';
export type { ImageMLPAEOptions } from './image_mlp_ae';
export { CIFAR_FILES, CifarFormatError, cifarSearchDirs, findCifarDir, readCifarRecords, cifarTrainPercent, cifarSplits, cifarDatasets, cifar10Datasets, cifar100Datasets, encodeCifarRecords } from './datasets/cifar';
export type { CifarName } from './datasets/cifar';
export { CONV_DATASETS, ConvTaskSchema, convDatasets, ConvTask, FIXED_CONV_TASKS, convTask, unstackTree, stackTrees, emaUpdate } from './conv';
export type { ConvDatasetName, ConvNorm, ConvTaskConfig, EmaState } from './conv';
export {
  imagenetFolderName,
  ImagenetFormatError,
  imagenetSearchDirs,
  imagenetShards,
  findImagenetDir,
  readTfrecords,
  exampleBytesFeatures,
  encodeExample,
  encodeImagenetTfrecords,
  decodeImagenetExample,
  readImagenetShards,
  gzipShardBytes,
  IMAGENET_STREAM_THRESHOLD_BYTES,
  StreamingImageBatchStream,
  imagenetDatasets,
} from './datasets/imagenet';
export type { ImagenetSize, ImagenetDatasetsOptions, StreamingImageBatchStreamOptions } from './datasets/imagenet';
export { GzipFormatError, GzipRecordReader, KeyedRandomInts, ShuffleBuffer, InterleavedRecords, ShuffledRecordStream, shardListCrc, STREAM_CHUNK_BYTES } from './datasets/tfrecord_stream';
export type { ShuffledRecordStreamOptions, RecordStreamCursor } from './datasets/tfrecord_stream';
export { NpzFormatError, parseNpyHeader, streamZipEntry, readNpzLabels, streamNpzImages, clslocToSortedSynsets, convertImagenetNpz } from './datasets/imagenet_npz';
export type { NpyHeader, ConvertImagenetNpzOptions, ConvertImagenetNpzResult } from './datasets/imagenet_npz';
export { MNIST_FILES, MNIST_URLS, SYSTEM_MNIST_DIR, mnistCacheDir, mnistSearchDirs, findMnistDir, mnistDatasets } from './datasets/mnist';
export { RESNET_DEFAULTS, resnetBlocks, resnetHaikuInit, maxPool3x3Stride2Same, maxPool3x3Stride2SameOps, batchNormTrain, batchNormTrainOps, resnetForward, resnetMeanCrossEntropy, resnetInitState, resnetLossWithState, resnetValueAndGradBatch, resnetNetPlan, resnetNetUsable, resnetNetValueAndGrad, ResnetTaskSchema, ResnetTask, RESNET_MULTI_RUNTIME_CONFIGS, FIXED_RESNET_TASKS, resnetTask } from './resnet';
export type { ResNetSpec, ResnetTaskConfig, FixedResnetTask, ResnetStatsSwitch, ResnetNetPlan } from './resnet';
export { RESNET_NET_KERNEL, resnetNetKernelFlops, resnetNetNative, useResnetNetKernel } from './resnet_kernels';
export { CONV_NET_KERNEL, CONV_NET_ACTIVATIONS, convNetActivation, convNetKernelFlops, convNetLossAndGrad, convNetNative, convNetUsable, useConvNetKernel } from './conv_net';
export type { ConvNetSpec } from './conv_net';
export { ParametricImageResNetSchema, ParametricImageResNetTask, ParametricImageResNet, sampleImageResnet } from './parametric/image_resnet';
export type { ParametricImageResNetOptions } from './parametric/image_resnet';
export { ParametricImageMLPAESchema, ParametricImageMLPAETask, ParametricImageMLPAE, sampleImageMlpAe } from './parametric/image_mlp_ae';
export type { ParametricImageMLPAEOptions } from './parametric/image_mlp_ae';
export { ParametricImageConvSchema, ParametricImageConvTask, ParametricImageConv, sampleImageConv } from './parametric/image_conv';
export type { ParametricImageConvOptions } from './parametric/image_conv';
export { PARAMETRIC_DATASET_NAMES, parametricDatasets, DATASET_FUNCTIONS, numClassesOf } from './parametric/datasets';
export type { ParametricDatasetName } from './parametric/datasets';
export { ParametricImageMLPVAESchema, ParametricImageMLPVAETask, ParametricImageMLPVAE, sampleImageMlpVae } from './parametric/image_mlp_vae';
export type { ParametricImageMLPVAEOptions } from './parametric/image_mlp_vae';
export { BYTE_VOCAB_SIZE, BYTE_NUM_SPECIAL, SENTENCEPIECE_32K_VOCAB_SIZE, encodeBytes, decodeBytes, cropOrPad, lmExample, TextExamples, FileByteSource, jsonRecordText, indexFileLines, readWholeFile, readCorpusFile, IN_MEMORY_CORPUS_LIMIT, splitRecords, percentSlice, languageSplits, CORPUS_NAMES, SYSTEM_FORTUNES_DIR, languageSearchRoots, fortuneFiles, fortunesSearchDirs, findFortunesDir, TINY_SHAKESPEARE_URLS, corpusLayout, findCorpusFiles, loadCorpus, parseIds, TextBatchStream, vocabSizeOf, languageDatasets, LANGUAGE_DATASET_FUNCTIONS, languageDatasetsByName } from './datasets/language';
export type { VocabName, RecordFormat, CorpusName, LanguageDatasetFunction, ByteSource } from './datasets/language';
export { RNNLMSchema, rnnLmName, RNNLMTask, FIXED_RNN_LM_CONFIGS, OFFLINE_RNN_LM_CONFIGS, FIXED_RNN_LM_TASKS, rnnLmTask } from './rnn_lm';
export type { RNNLMConfig } from './rnn_lm';
export { TransformerLMSchema, TransformerLMTask, FIXED_TRANSFORMER_LM_TASKS, transformerLmTask } from './transformer_lm';
export type { TransformerLMConfig } from './transformer_lm';
export { ParametricLMRNNSchema, ParametricLMRNNTask, ParametricLMRNN, SAMPLED_LM_DATASETS, sampleLmRnn, parametricLmRnnFromConfig } from './parametric/lm_rnn';
export type { ParametricLMRNNOptions } from './parametric/lm_rnn';
export { ParametricLMTransformerSchema, ParametricLMTransformerTask, ParametricLMTransformer, sampleLmTransformer, parametricLmTransformerFromConfig } from './parametric/lm_transformer';
export type { ParametricLMTransformerOptions } from './parametric/lm_transformer';
export { unavailableDatasets } from './conv';
// flax_modules.ts names parameters by SHA-1 (node:crypto), so the Mixer and ViT tasks are Node-only
export { flaxInitializers, foldInStatic, flaxRng, FlaxScope, flaxInitBatch, sub as flaxSub, leaf as flaxLeaf, denseOf, flaxLayerNorm, patchEmbed, flaxDropout, meanCrossEntropy, mixerVitNormalizer } from './flax_modules';
export type { FlaxInitializer, FlaxTree } from './flax_modules';
export { MIXER_VIT_DATASETS, mixerVitDatasets, imageTaskShape, MLPMixerSchema, MLPMixerTask, FIXED_MLP_MIXER_TASKS, mlpMixerTask } from './mlp_mixer';
export type { MixerVitDatasetName, MLPMixerConfig } from './mlp_mixer';
export { VisionTransformerSchema, VisionTransformerTask, FIXED_VIT_TASKS, vitTask } from './vit';
export type { VisionTransformerConfig } from './vit';
export { ParametricVITSchema, ParametricVIT, sampleVit, SampledVITSchema, sampledVit, timedSampleVit, TimedSampledVITSchema, timedSampledVit } from './parametric/vit';
export {
  hashTrick,
  flattenCfg,
  featurizeValue,
  featurizeCfgPath,
  featurizeMany,
  initTimingModel,
  TimingModelError,
  readTimingModel,
  TimingModel,
  TIMING_MODEL_PATHS,
  REFERENCE_TIMING_MODEL_ROOT,
  timingModelRootDir,
  loadTimingModel,
  clearTimingModels,
  rejectionSample,
} from './parametric/time_model';
export type { FlatValue, CfgFeatures, HostArray, TimingModelWeights, TimingModelKind, RejectionSampleOptions } from './parametric/time_model';
export { timedSampleImageMlp, timedSampleImageConv, timedSampleImageMlpAe, timedSampleImageMlpVae, timedSampleImageResnet, timedSampleLmRnn, timedSampleLmTransformer } from './parametric/timed_samplers';
export type { ParametricVITOptions } from './parametric/vit';
export { loadSentencePiece, encodeRecords, tokenizeCorpus } from './datasets/sentencepiece';
export type { SentencePieceEncoder } from './datasets/sentencepiece';
