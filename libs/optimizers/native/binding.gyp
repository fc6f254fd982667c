{
  "targets": [
    {
      "target_name": "lopt_optimizers",
      "sources": ["mlp_lopt_step.c"],
      "include_dirs": [".", "../../core/native"],
      "cflags": ["-O3", "-std=gnu11", "-Wno-psabi"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3"]}
    }
  ]
}
