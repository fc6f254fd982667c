{
  "targets": [
    {
      "target_name": "lopt_optimizers",
      "sources": ["mlp_lopt_step.c", "per_param_mlp.c"],
      "include_dirs": [".", "../../core/native"],
      "cflags": ["-O3", "-std=gnu11", "-fno-math-errno", "-Wno-psabi"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3", "-fno-math-errno"]}
    }
  ]
}
