{
  "targets": [
    {
      "target_name": "lopt_tasks",
      "sources": ["image_mlp.c"],
      "include_dirs": [".", "../../core/native"],
      "cflags": ["-O3", "-std=gnu11", "-Wno-psabi", "-fno-trapping-math"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3", "-fno-trapping-math"]}
    },
    {
      "target_name": "lopt_resnet",
      "sources": ["resnet.c"],
      "include_dirs": [".", "../../core/native"],
      "cflags": ["-O3", "-std=gnu11", "-Wno-psabi", "-fno-trapping-math"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O3", "-fno-trapping-math"]}
    }
  ]
}
