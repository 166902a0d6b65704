{
  "targets": [
    {
      "target_name": "stockade_addon",
      "sources": ["native/addon/addon.c"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-init",
      "type": "executable",
      "sources": ["native/init/main.c"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    }
  ]
}
