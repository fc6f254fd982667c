/*
 * Include after defining LOPT_KERNEL_HEADER: compiles that header once per instruction set (see
 * lopt_napi.h), with KERNEL(name) pasting the suffix, so each copy is inlined for its own target.
 * A file may include it again with another LOPT_KERNEL_HEADER (#undef it first).
 * LOPT_PICK(fn, variant) gives the function of variant index `variant` (lopt_variants() order).
 */
#if defined(__x86_64__) && defined(__GNUC__)
#define KERNEL(name) name##_avx512
#define LOPT_VW 16
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#include LOPT_KERNEL_HEADER
#pragma GCC pop_options
#undef KERNEL
#undef LOPT_VW
#define KERNEL(name) name##_avx2
#define LOPT_VW 8
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include LOPT_KERNEL_HEADER
#pragma GCC pop_options
#undef KERNEL
#endif
#undef LOPT_VW
#define KERNEL(name) name##_base
#define LOPT_VW 8
#include LOPT_KERNEL_HEADER
#undef KERNEL
#undef LOPT_VW

#ifndef LOPT_PICK /* defined once, however many kernel headers a file compiles */
#if defined(__x86_64__) && defined(__GNUC__)
/* Index -> function, for the variants lopt_variants() lists on this CPU. */
#define LOPT_PICK(fn, variant) lopt_pick_impl((void *)fn##_avx512, (void *)fn##_avx2, (void *)fn##_base, variant)
static inline void *lopt_pick_impl(void *avx512, void *avx2, void *base, int variant) {
  const char *names[LOPT_MAX_VARIANTS];
  const int n = lopt_variants(names);
  if (variant < 0 || variant >= n) return NULL;
  if (strcmp(names[variant], "avx512") == 0) return avx512;
  if (strcmp(names[variant], "avx2") == 0) return avx2;
  return base;
}
#else
#define LOPT_PICK(fn, variant) ((variant) == 0 ? (void *)fn##_base : NULL)
#endif
#endif
