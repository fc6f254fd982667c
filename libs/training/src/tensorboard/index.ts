export { SummaryWriter, makeHistogram } from './writer';
export type { SummaryWriterOptions } from './writer';
export { readEventFile, listEventFiles, scalarsByTag } from './reader';
export type { ScalarPoint } from './reader';
export { crc32c, maskedCrc32c, encodeRecord, decodeRecords, RecordCorruptionError } from './record';
export { encodeEvent, decodeEvent, FILE_VERSION, DT_STRING, DT_FLOAT, SESSION_START } from './proto';
export type { EventData, SummaryValue, HistogramData, TensorData } from './proto';
