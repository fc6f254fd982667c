{
  "targets": [
    {
      "target_name": "lopt_native",
      "sources": ["mlp_lopt_step.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wno-psabi"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3"]}
    }
  ]
}
