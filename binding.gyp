{
  # stockade-init's sources, once: the host's build and the static one the vm guest carries.
  "variables": {
    "init_sources": [
      "native/init/main.c",
      "native/init/selfclone.c",
      "native/init/plan.c",
      "native/init/msg.c",
      "native/init/ns.c",
      "native/init/path.c",
      "native/init/mounts.c",
      "native/init/copyup.c",
      "native/init/rootfs.c",
      "native/init/devices.c",
      "native/init/terminal.c",
      "native/init/process.c",
      "native/init/child.c",
      "native/init/hooks.c",
      "native/init/sentry.c",
      "native/init/home.c",
      "native/init/pid1.c"
    ]
  },
  "targets": [
    {
      "target_name": "stockade_addon",
      "sources": ["native/addon/addon.c", "native/addon/notify.c", "native/addon/bpf.c", "native/addon/blocking.c", "native/addon/fastpath.c"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-init",
      "type": "executable",
      "sources": ["<@(init_sources)"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-init-static",
      "type": "executable",
      "sources": ["<@(init_sources)"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "stockade-agent",
      "type": "executable",
      "sources": [
        "native/agent/main.c",
        "native/agent/boot.c",
        "native/agent/channel.c",
        "native/agent/procs.c",
        "native/agent/serve.c",
        "native/agent/container.c",
        "native/agent/net.c",
        "native/agent/dns.c"
      ],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "stockade-template-hold",
      "type": "executable",
      "sources": ["native/template/hold.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-rbind",
      "type": "executable",
      "sources": ["native/template/rbind.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-seccomp-exec",
      "type": "executable",
      "sources": ["native/template/seccomp-exec.c"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    },
    {
      "target_name": "stockade-light",
      "type": "executable",
      "sources": ["native/light/light.c", "native/light/watch.c", "native/light/planner.c", "native/light/relay.c"],
      "include_dirs": ["native/include"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-D_GNU_SOURCE"]
    }
  ]
}
