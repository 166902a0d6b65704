/* stockade-init: re-executes itself from a sealed in-memory copy before it goes near a container (CVE-2019-5736). */
/*
 * The helper's container side, C, is visible inside the container's pid namespace until it execs
 * the workload, and its /proc/PID/exe leads to our executable. Not being dumpable keeps out a
 * container process without CAP_SYS_PTRACE over the host's user namespace, but one that has it (a
 * container without a user namespace whose root keeps that capability) can open the file, wait
 * until no helper runs it, re-open it for writing through /proc/self/fd and replace the host's
 * binary. So the helper never runs from that file while a container can see it: it copies
 * itself into a memfd, seals the copy against every change, and runs that instead. What a
 * container reaches through /proc/PID/exe is then a private, unwritable copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

/* An executable with these seals cannot be changed by anyone, whoever sealed it: nothing to do. */
static bool running_from_sealed_copy(void)
{
	_cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & SEALS) == SEALS;
}

static int make_memfd(void)
{
	/* MFD_EXEC: with vm.memfd_noexec=1 a memfd is otherwise created non-executable. Kernels
	 * before 6.3 do not know the flag (EINVAL) and make every memfd executable. */
	int fd = memfd_create("stockade-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("stockade-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return fd;
}

static void copy_all(int from, int to, off_t size)
{
	off_t done = 0;
	while (done < size) {
		ssize_t n = sendfile(to, from, NULL, (size_t)(size - done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			stk_fail_errno("selfclone", "copy stockade-init into a memfd");
		if (n == 0)
			stk_fail(EIO, "selfclone", "stockade-init shrank while it was copied");
		done += n;
	}
}

void stk_run_from_sealed_copy(char **argv)
{
	if (running_from_sealed_copy()) {
		/* execveat named us after the fd ("/dev/fd/N" -> "N"); ps and top should still say who we are. */
		prctl(PR_SET_NAME, "stockade-init", 0, 0, 0);
		return;
	}
	_cleanup_close_ int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (exe < 0)
		stk_fail_errno("selfclone", "open /proc/self/exe");
	struct stat st;
	if (fstat(exe, &st) < 0)
		stk_fail_errno("selfclone", "stat /proc/self/exe");
	_cleanup_close_ int mem = make_memfd();
	if (mem < 0)
		stk_fail_errno("selfclone", "create a memfd for a sealed copy of stockade-init");
	copy_all(exe, mem, st.st_size);
	if (fcntl(mem, F_ADD_SEALS, SEALS) < 0)
		stk_fail_errno("selfclone", "seal the copy of stockade-init");
	/* An ELF binary runs from a close-on-exec fd (only a script's interpreter would need to
	 * re-open it), so the copy is not left open in the new image. */
	syscall(SYS_execveat, mem, "", argv, environ, AT_EMPTY_PATH);
	stk_fail_errno("selfclone", "execute the sealed copy of stockade-init");
}
