/* stockade-init: HOME from the container's /etc/passwd when the process's environment leaves it unset or empty, as runc does. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "init.h"

/* A passwd file past this is not read: the image's file, and the user's home is not worth more. */
#define PASSWD_MAX (4u << 20)

/* The whole of /etc/passwd as the container sees it, NUL-terminated; NULL when it is not a regular
 * file that can be read (absent, a FIFO, a device: never waited on, never read without end). */
static char *read_passwd(void)
{
	_cleanup_close_ int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > PASSWD_MAX)
		return NULL;
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return NULL;
	size_t len = 0;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* The home directory of `uid` in the passwd text (its first entry, as getpwuid), or NULL. */
static char *home_of(char *passwd, uint32_t uid)
{
	for (char *line = passwd, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		/* name:password:uid:gid:gecos:home:shell */
		char *field[7] = { 0 };
		char *p = line;
		size_t n = 0;
		for (; n < 7 && p != NULL; n++) {
			field[n] = p;
			p = strchr(p, ':');
			if (p != NULL)
				*p++ = '\0';
		}
		if (n < 6 || field[2] == NULL || field[2][0] == '\0')
			continue;
		char *end;
		errno = 0;
		unsigned long id = strtoul(field[2], &end, 10);
		if (*end != '\0' || errno != 0 || id != uid)
			continue;
		return field[5];
	}
	return NULL;
}

void stk_fill_home(struct stk_plan *plan)
{
	size_t at = plan->envc;
	for (size_t i = 0; i < plan->envc; i++) {
		if (strncmp(plan->envp[i], "HOME=", 5) == 0) {
			if (plan->envp[i][5] != '\0')
				return;
			at = i;
		}
	}
	/* runc's user lookup: the process's uid in the container's /etc/passwd, "/" when it has no
	 * entry or no file (a numeric user is never an error). */
	uint32_t uid = plan->has_user ? plan->uid : 0;
	_cleanup_free_ char *passwd = read_passwd();
	const char *home = passwd == NULL ? NULL : home_of(passwd, uid);
	char *entry;
	if (asprintf(&entry, "HOME=%s", home == NULL || home[0] == '\0' ? "/" : home) < 0)
		stk_fail(ENOMEM, "home", "set HOME");
	if (at == plan->envc) {
		const char **grown = realloc(plan->envp, (plan->envc + 2) * sizeof *grown);
		if (grown == NULL)
			stk_fail(ENOMEM, "home", "set HOME");
		plan->envp = grown;
		plan->envc++;
		plan->envp[plan->envc] = NULL;
	}
	plan->envp[at] = entry;
}
