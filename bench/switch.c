// The cost of handing the CPU to another task and back on this machine: the least any supervisor
// (stockade's sentry, a bare C one, gVisor's) pays per mediated system call, whatever it does in
// between. Two tasks pass a byte back and forth over two pipes, as processes and as threads, both
// on one CPU and on two.
//   switch [ITERATIONS]   prints one JSON line: ns per round trip (two wake-ups, two switches)
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int there[2], back[2];
static long iterations = 20000;

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		perror("switch: sched_setaffinity");
		exit(1);
	}
}

static void echo(void)
{
	char c;
	for (long i = 0; i < iterations; i++)
		if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
			exit(1);
}

static void *echo_thread(void *cpu)
{
	pin((int)(long)cpu);
	echo();
	return NULL;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* ns per round trip between this task on cpu `mine` and an echoing thread or process on `theirs`. */
static double round_trip(int thread, int mine, int theirs)
{
	pthread_t t;
	pid_t pid = 0;
	char c = 'x';

	if (pipe(there) != 0 || pipe(back) != 0) {
		perror("switch: pipe");
		exit(1);
	}
	pin(mine);
	if (thread)
		pthread_create(&t, NULL, echo_thread, (void *)(long)theirs);
	else if ((pid = fork()) == 0) {
		pin(theirs);
		echo();
		_exit(0);
	}
	double start = now_ns();
	for (long i = 0; i < iterations; i++)
		if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
			exit(1);
	double ns = (now_ns() - start) / iterations;
	if (thread)
		pthread_join(t, NULL);
	else
		waitpid(pid, NULL, 0);
	close(there[0]);
	close(there[1]);
	close(back[0]);
	close(back[1]);
	return ns;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		iterations = atol(argv[1]);
	int two = sysconf(_SC_NPROCESSORS_ONLN) > 1;
	printf("{\"process, one CPU\":%.0f,\"thread, one CPU\":%.0f", round_trip(0, 0, 0), round_trip(1, 0, 0));
	if (two)
		printf(",\"process, two CPUs\":%.0f,\"thread, two CPUs\":%.0f", round_trip(0, 0, 1), round_trip(1, 0, 1));
	printf("}\n");
	return 0;
}
