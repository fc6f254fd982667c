/**
 * The subset of TensorFlow's `Event` / `Summary` protos that TensorBoard reads, defined at
 * runtime with protobufjs. Field numbers follow tensorflow/core/util/event.proto and
 * tensorflow/core/framework/{summary,tensor,tensor_shape}.proto.
 */
import * as protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package tensorflow;

message TensorShapeProto {
  message Dim { int64 size = 1; string name = 2; }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  int32 dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated float float_val = 5 [packed = true];
  repeated double double_val = 6 [packed = true];
  repeated int32 int_val = 7 [packed = true];
  repeated bytes string_val = 8;
}

message HistogramProto {
  double min = 1;
  double max = 2;
  double num = 3;
  double sum = 4;
  double sum_squares = 5;
  repeated double bucket_limit = 6 [packed = true];
  repeated double bucket = 7 [packed = true];
}

message SummaryMetadata {
  message PluginData { string plugin_name = 1; bytes content = 2; }
  PluginData plugin_data = 1;
  string display_name = 2;
  string summary_description = 3;
  int32 data_class = 4;
}

message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    SummaryMetadata metadata = 9;
    oneof value {
      float simple_value = 2;
      bytes obsolete_old_style_histogram = 3;
      HistogramProto histo = 5;
      TensorProto tensor = 8;
    }
  }
  repeated Value value = 1;
}

message SessionLog {
  enum SessionStatus {
    STATUS_UNSPECIFIED = 0;
    START = 1;
    STOP = 2;
    CHECKPOINT = 3;
  }
  SessionStatus status = 1;
  string checkpoint_path = 2;
  string msg = 3;
}

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    bytes graph_def = 4;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}
`;

/** TensorFlow's DataType enum values used here. */
export const DT_FLOAT = 1;
/** TensorFlow `DT_STRING` (text summaries). */
export const DT_STRING = 7;
/** SummaryMetadata.DataClass.DATA_CLASS_TENSOR. */
export const DATA_CLASS_TENSOR = 2;
/** `file_version` of an event file's first event. */
export const FILE_VERSION = 'brain.Event:2';

const root = protobuf.parse(PROTO, { keepCase: true }).root;
export const EventType = root.lookupType('tensorflow.Event');
export const SummaryType = root.lookupType('tensorflow.Summary');

/** TensorFlow's `HistogramProto`: range, count, sums and bucket limits and counts. */
export interface HistogramData {
  min: number;
  max: number;
  num: number;
  sum: number;
  sum_squares: number;
  bucket_limit: number[];
  bucket: number[];
}

/** TensorFlow's `TensorProto`, the fields summaries use. */
export interface TensorData {
  dtype: number;
  tensor_shape?: { dim?: Array<{ size: number; name?: string }> };
  string_val?: Uint8Array[];
  float_val?: number[];
  double_val?: number[];
  int_val?: number[];
  tensor_content?: Uint8Array;
}

/** One `Summary.Value`: a tag with a scalar, histogram or tensor, and its plugin metadata. */
export interface SummaryValue {
  tag: string;
  simple_value?: number;
  histo?: HistogramData;
  tensor?: TensorData;
  metadata?: {
    plugin_data?: { plugin_name: string; content?: Uint8Array };
    display_name?: string;
    summary_description?: string;
    data_class?: number;
  };
}

/** A decoded event: plain data, int64 fields as numbers. */
export interface EventData {
  wall_time: number;
  step: number;
  file_version?: string;
  summary?: { value: SummaryValue[] };
  /** status 1 = START: TensorBoard then drops every record of this run at or after `step`. */
  session_log?: { status: number; checkpoint_path?: string; msg?: string };
}

/** SessionLog.SessionStatus.START. */
export const SESSION_START = 1;

/** Protobuf bytes of a `tensorflow.Event`; throws for an invalid one. */
export function encodeEvent(event: EventData): Uint8Array {
  const err = EventType.verify(event);
  if (err) throw new Error(`invalid Event: ${err}`);
  return EventType.encode(EventType.fromObject(event)).finish();
}

/** A `tensorflow.Event` from its protobuf bytes, int64s as numbers and defaults filled in. */
export function decodeEvent(bytes: Uint8Array): EventData {
  const msg = EventType.decode(bytes);
  // defaults: zero-valued scalars (step 0, histogram min 0, ...) come back as 0, not missing;
  // absent sub-messages come back as null.
  return EventType.toObject(msg, { longs: Number, defaults: true, arrays: true }) as EventData;
}
