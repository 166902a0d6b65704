/* stockade-agent: PID 1 of a vm-level guest; boots the guest's user space and serves the host.
 *
 * Run with --channel-fd N (not as PID 1) it serves the protocol on the socket N instead, with
 * MOUNT and SPAWN refused and SHUTDOWN only ending the loop: the tests feed its decoder hostile
 * frames that way, without a VM. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent.h"

/* Free memory left to the guest while the free pages are zeroed: what the kernel may need meanwhile. */
#define ZERO_MARGIN_BYTES (16L << 20)

/* A template's build (stockade_template=1 on its kernel command line; src/vm/template.ts): the
 * host saves the guest's memory right after HELLO, and every clone maps what was saved. The boot
 * left pages it no longer uses holding what they held (the bzImage it decompressed, the
 * initramfs' archive, caches); the host keeps only pages that are not all zeros
 * (native/template/hold.c). So the caches are dropped and every free page is zeroed first: a
 * child maps nearly all free memory populated (the kernel zeroes each page it hands out) and
 * exits. Memory only: a failure leaves the template larger, not wrong. */
static void zero_free_memory(void)
{
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "3", 1) != 1) agent_log("drop_caches: %s", strerror(errno));
    close(fd);
  }
  long pages = sysconf(_SC_AVPHYS_PAGES), size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0 || pages * size <= ZERO_MARGIN_BYTES) return;
  size_t len = (size_t)(pages * size - ZERO_MARGIN_BYTES);
  pid_t pid = fork();
  if (pid < 0) {
    agent_log("zeroing free memory: fork: %s", strerror(errno));
    return;
  }
  if (pid == 0) _exit(mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) == MAP_FAILED ? 1 : 0);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--channel-fd") == 0) {
    if (getpid() == 1) return 2;
    /* One fd for both directions, as the virtio port is: a socket. */
    int fd = atoi(argv[2]);
    if (fd < 0 || fcntl(fd, F_SETFL, O_NONBLOCK) < 0) return 2;
    channel_init(fd);
    return agent_serve(0) < 0 ? 1 : 0;
  }
  if (getpid() != 1) {
    static const char msg[] = "stockade-agent: runs as PID 1 of a vm guest (or with --channel-fd N for tests)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    return 2;
  }
  /* stockade_probe=1 on the kernel command line (the kernel hands it to init in the
   * environment): the boot is only a probe of the accelerator, or the floor a benchmark
   * measures against; end it at once. */
  if (getenv("stockade_probe") != NULL) agent_power_off();
  if (agent_mount_basics() < 0 || agent_load_modules("/lib/modules/load-order") < 0) agent_power_off();
  /* A container's network namespace has lo up; the guest's, which the container shares, too. */
  if (net_loopback_up() < 0) agent_log("lo up: %s", strerror(errno));
  container_prepare_init();
  if (getenv("stockade_template") != NULL) {
    container_prepare_cgroups();
    zero_free_memory();
  }
  int port = agent_open_port(AGENT_PORT_NAME, 10000);
  if (port < 0) agent_power_off();
  channel_init(port);
  if (agent_serve(1) < 0) agent_log("the channel to the host broke; powering off");
  agent_power_off();
}
