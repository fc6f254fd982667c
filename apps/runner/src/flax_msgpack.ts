/** Flax msgpack checkpoints: the code lives in libs/core (flax_msgpack.ts); re-exported here for the runner. */
export {
  EXT_NDARRAY,
  EXT_COMPLEX,
  EXT_NPSCALAR,
  FlaxFormatError,
  NdArray,
  flaxExtensionCodec,
  looksLikeFlaxMsgpack,
  msgpackRestore,
  msgpackSerialize,
  ndarrayToTensor,
  tensorToNdArray,
  importFlaxParams,
  exportFlaxParams,
  checkThetaStructure,
} from '@lopt/core';
export type { FlaxParams } from '@lopt/core';
