{
  "targets": [
    {
      "target_name": "lopt_core",
      "sources": ["core.c"],
      "include_dirs": ["."],
      "cflags": ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math", "-Wno-psabi"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-fno-trapping-math"]}
    }
  ]
}
