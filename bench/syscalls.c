// Times a few system calls from inside a container (or on the host) and prints ns per call as one
// line of JSON. Built static (gcc -static -O2) so it runs in a bare busybox rootfs.
//
//   syscalls [MS]   times each operation in rounds of at least MS milliseconds (default 100)
//   syscalls noop   exits 0 at once: the program fork+exec+wait runs
//   syscalls cpu stat|open N
//                   N stats (or opens and closes) of itself, with a 1.5 s pause before and after and a
//                   line "done" between: bench/supervisor-cpu.sh reads the supervisor's CPU time in
//                   the pauses, so that it counts exactly those N calls
//
// The iteration count adapts to the cost of the call, which differs 1000-fold between the host
// and runsc's ptrace platform: for each operation the count is doubled until one batch takes MS
// (this is the warm-up), then ROUNDS rounds of that count are timed with
// clock_gettime(CLOCK_MONOTONIC) and the median round's ns per call is printed, which keeps one
// round disturbed by a neighbour on a busy machine from moving the result.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 5

static char self[4096];
static int zero_fd = -1, null_fd = -1;

static void die(const char *what) {
  fprintf(stderr, "syscalls: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// The raw system call: libc may one day cache getppid, and then nothing would be measured.
static void op_getppid(void) {
  if (syscall(SYS_getppid) < 0) die("getppid");
}

static void op_open_close(void) {
  int fd = open(self, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open");
  if (close(fd) != 0) die("close");
}

static void op_stat(void) {
  struct stat st;
  if (stat(self, &st) != 0) die("stat");
}

static void op_read(void) {
  char c;
  if (read(zero_fd, &c, 1) != 1) die("read /dev/zero");
}

static void op_write(void) {
  char c = 'x';
  if (write(null_fd, &c, 1) != 1) die("write /dev/null");
}

static void op_fork_exec_wait(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    char *argv[] = {self, "noop", NULL};
    char *envp[] = {NULL};
    execve(self, argv, envp);
    _exit(127);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "syscalls: child failed (status 0x%x)\n", status);
    exit(1);
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t run_batch(void (*op)(void), long n) {
  uint64_t t0 = now_ns();
  for (long i = 0; i < n; i++) op();
  return now_ns() - t0;
}

// Median over ROUNDS rounds of at least round_ns each, in ns per call; *count gets the calls per round.
static double measure(void (*op)(void), uint64_t round_ns, long *count) {
  long n = 1;
  while (run_batch(op, n) < round_ns && n < (1L << 40)) n *= 2;
  uint64_t ps[ROUNDS];  // picoseconds per call: a fraction without floating point in the loop
  for (int r = 0; r < ROUNDS; r++) ps[r] = run_batch(op, n) * 1000u / (uint64_t)n;
  qsort(ps, ROUNDS, sizeof ps[0], cmp_u64);
  *count = n;
  return (double)ps[ROUNDS / 2] / 1000.0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "noop") == 0) return 0;
  if (argc > 3 && strcmp(argv[1], "cpu") == 0) {
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) die("readlink /proc/self/exe");
    self[len] = '\0';
    void (*op)(void) = strcmp(argv[2], "open") == 0 ? op_open_close : op_stat;
    long n = atol(argv[3]);
    struct timespec pause = {1, 500000000};
    nanosleep(&pause, NULL);
    uint64_t ns = run_batch(op, n);
    printf("done %.2f us per call\n", (double)ns / 1000.0 / (double)n);
    fflush(stdout);
    nanosleep(&pause, NULL);
    return 0;
  }
  long ms = argc > 1 ? atol(argv[1]) : 100;
  if (ms <= 0) {
    fprintf(stderr, "usage: syscalls [MS] | syscalls noop\n");
    return 2;
  }
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) die("readlink /proc/self/exe");
  self[len] = '\0';
  zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (zero_fd < 0) die("open /dev/zero");
  null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) die("open /dev/null");

  struct { const char *name; void (*op)(void); } ops[] = {
    {"getppid", op_getppid},
    {"open+close", op_open_close},
    {"stat", op_stat},
    {"read 1B", op_read},
    {"write 1B", op_write},
    {"fork+exec+wait", op_fork_exec_wait},
  };
  long counts[sizeof ops / sizeof ops[0]];
  printf("{");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    double ns = measure(ops[i].op, (uint64_t)ms * 1000000u, &counts[i]);
    printf("%s\"%s\":%.1f", i ? "," : "", ops[i].name, ns);
    fflush(stdout);
  }
  printf(",\"calls_per_round\":{");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) printf("%s\"%s\":%ld", i ? "," : "", ops[i].name, counts[i]);
  printf("},\"rounds\":%d,\"round_ms\":%ld}\n", ROUNDS, ms);
  return 0;
}
