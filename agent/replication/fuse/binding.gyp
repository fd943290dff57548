{
  "targets": [{
    "target_name": "hakit_fuse",
    "variables": {
      "fuse__include_dirs%": "<!(pkg-config fuse --cflags-only-I | sed s/-I//g)",
      "fuse__libraries%": "<!(pkg-config --libs-only-L --libs-only-l fuse)"
    },
    "include_dirs": [".", "<@(fuse__include_dirs)"],
    "link_settings": { "libraries": ["<@(fuse__libraries)"] },
    "defines": ["_FILE_OFFSET_BITS=64"],
    "sources": ["fuse-native.c"],
    "cflags": ["-g", "-O2", "-Wall"]
  }]
}
