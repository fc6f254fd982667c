export { SummaryWriter, makeHistogram } from './writer';
export type { SummaryWriterOptions } from './writer';
export { readEventFile, listEventFiles, scalarsByTag } from './reader';
export type { ScalarPoint } from './reader';
// TFRecord framing lives in @lopt/core (tfrecord.ts); re-exported here where the event files use it
export { crc32c, maskedCrc32c, encodeRecord, decodeRecords, RecordCorruptionError } from '@lopt/core';
export { encodeEvent, decodeEvent, FILE_VERSION, DT_STRING, DT_FLOAT, SESSION_START } from './proto';
export type { EventData, SummaryValue, HistogramData, TensorData } from './proto';
