{
  "variables": { "hakit_fuse_pkg%": "fuse" },
  "targets": [{
    "target_name": "hakit_fuse",
    "include_dirs": [".", "<!@(pkg-config <(hakit_fuse_pkg) --cflags-only-I | sed s/-I//g)"],
    "link_settings": { "libraries": ["<!@(pkg-config --libs-only-L --libs-only-l <(hakit_fuse_pkg))"] },
    "defines": ["_FILE_OFFSET_BITS=64", "HAKIT_FUSE_PKG_<(hakit_fuse_pkg)"],
    "sources": ["fuse-native.c"],
    "cflags": ["-g", "-O2", "-Wall"]
  }]
}
