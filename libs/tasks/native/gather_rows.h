/*
 * gatherRows(src, rowElems, indices, dst): dst row i = src row indices[i], for rows of rowElems
 * 4-byte elements (Float32Array or Int32Array, the same type for src and dst); a data stream's
 * batches of examples (TensorBatchStream.gather). An index outside [0, rows) is an error naming it.
 *
 * The examples of a batch are random rows of a split far larger than the caches, so the time goes
 * to memory latency rather than to the copy: each row is requested GATHER_PREFETCH rows ahead, so
 * that several rows arrive at once instead of one after another.
 */
#define GATHER_PREFETCH 8

static napi_value GatherRows(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value a[4];
  napi_get_cb_info(env, info, &argc, a, NULL, NULL);
  if (argc != 4) return lopt_fail(env, "gatherRows: expected (src, rowElems, indices, dst)");
  void *src, *dst;
  size_t srcLen, dstLen, count;
  int32_t rowElems, *idx;
  const int f32 = lopt_typed(env, a[0], napi_float32_array, &src, &srcLen) && lopt_typed(env, a[3], napi_float32_array, &dst, &dstLen);
  if (!f32 && !(lopt_typed(env, a[0], napi_int32_array, &src, &srcLen) && lopt_typed(env, a[3], napi_int32_array, &dst, &dstLen)))
    return lopt_fail(env, "gatherRows: src and dst must both be Float32Array or both Int32Array");
  if (napi_get_value_int32(env, a[1], &rowElems) != napi_ok || rowElems < 1 || srcLen % (size_t)rowElems != 0)
    return lopt_fail(env, "gatherRows: rowElems must be a positive integer that divides src's length");
  if (!lopt_i32(env, a[2], &idx, &count)) return lopt_fail(env, "gatherRows: indices must be an Int32Array");
  if (dstLen != count * (size_t)rowElems) return lopt_fail(env, "gatherRows: dst must hold indices.length rows");
  const int64_t rows = (int64_t)(srcLen / (size_t)rowElems);
  for (size_t i = 0; i < count; i++)
    if (idx[i] < 0 || idx[i] >= rows) {
      char msg[96];
      snprintf(msg, sizeof msg, "gatherRows: the index value %d is not in [0, %lld]", idx[i], (long long)rows - 1);
      return lopt_fail(env, msg);
    }
  const size_t rowBytes = (size_t)rowElems * 4;
  const char *s = src;
  char *d = dst;
  for (size_t i = 0; i < count; i++) {
    if (i + GATHER_PREFETCH < count) {
      const char *ahead = s + (size_t)idx[i + GATHER_PREFETCH] * rowBytes;
      for (size_t o = 0; o < rowBytes; o += 64) __builtin_prefetch(ahead + o);
    }
    memcpy(d + i * rowBytes, s + (size_t)idx[i] * rowBytes, rowBytes);
  }
  return NULL;
}
