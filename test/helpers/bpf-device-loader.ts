// A static loader that puts a compiled cgroup device program on a cgroup2 directory, for a guest
// that has no Node and no stockade addon (test/integration/cgroup-v2-guest.test.ts). It does what
// the addon's bpfDeviceProgLoad and bpfCgroupDeviceAttach do for a first attach (BPF_PROG_LOAD of
// a BPF_PROG_TYPE_CGROUP_DEVICE program, BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI); the program is
// stockade's own (src/cgroups/device-bpf.ts), and the guest's kernel verifies and enforces it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOADER_C = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct bpf_insn insns[4096];
static char log_buf[65536];

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: bpf-device-loader PROGRAM CGROUP_DIR\\n"); return 64; }
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[1]); return 65; }
  if (st.st_size <= 0 || (size_t)st.st_size > sizeof insns || st.st_size % 8) { fprintf(stderr, "%s: not whole bpf_insn\\n", argv[1]); return 65; }
  if (read(fd, insns, st.st_size) != st.st_size) { perror(argv[1]); return 65; }
  close(fd);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (unsigned long)insns;
  attr.insn_cnt = (unsigned)(st.st_size / 8);
  attr.license = (unsigned long)"Apache-2.0";
  attr.log_buf = (unsigned long)log_buf;
  attr.log_size = sizeof log_buf;
  attr.log_level = 1;
  long prog = sys_bpf(BPF_PROG_LOAD, &attr);
  if (prog < 0) { fprintf(stderr, "BPF_PROG_LOAD: %s\\n%s\\n", strerror(errno), log_buf); return 66; }
  int cg = open(argv[2], O_RDONLY | O_DIRECTORY);
  if (cg < 0) { perror(argv[2]); return 65; }
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (unsigned)cg;
  attr.attach_bpf_fd = (unsigned)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) { fprintf(stderr, "BPF_PROG_ATTACH: %s\\n", strerror(errno)); return 67; }
  return 0;
}
`;

/** Builds the loader, statically linked, at `out`; throws with gcc's words when it cannot. */
export function buildBpfDeviceLoader(out: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bpf-loader-'));
  try {
    const src = join(dir, 'loader.c');
    writeFileSync(src, LOADER_C);
    const r = spawnSync('gcc', ['-O2', '-static', '-o', out, src], { encoding: 'utf8' });
    if (r.error !== undefined) throw new Error(`the guest's device program loader does not build: gcc: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`the guest's device program loader does not build: ${r.stderr.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
