/* stockade-init: reads the binary setup plan and checks it strictly (a bad plan is an error, never a crash). */
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/filter.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>

#include "init.h"
#include "syscalls.h"

/* No plan the runtime writes comes near this; it bounds what a broken writer can make us hold. */
#define PLAN_MAX_BYTES (64u << 20)

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |  \
	 CLONE_NEWNET | CLONE_NEWTIME)

#define plan_fail(...) stk_fail(EINVAL, "plan", __VA_ARGS__)

struct cursor {
	const uint8_t *p;
	size_t left;
	uint32_t tag;
};

static uint32_t get_u32(struct cursor *c)
{
	uint32_t v;
	if (c->left < 4)
		plan_fail("record %u is truncated", c->tag);
	memcpy(&v, c->p, 4);
	c->p += 4;
	c->left -= 4;
	return le32toh(v);
}

static uint64_t get_u64(struct cursor *c)
{
	uint64_t v;
	if (c->left < 8)
		plan_fail("record %u is truncated", c->tag);
	memcpy(&v, c->p, 8);
	c->p += 8;
	c->left -= 8;
	return le64toh(v);
}

static const char *get_str(struct cursor *c)
{
	uint32_t len = get_u32(c);
	if (len >= c->left)
		plan_fail("record %u: string of %u bytes overruns the record", c->tag, len);
	const char *s = (const char *)c->p;
	if (s[len] != '\0')
		plan_fail("record %u: string is not NUL-terminated", c->tag);
	if (memchr(s, '\0', len) != NULL)
		plan_fail("record %u: string contains a NUL byte", c->tag);
	c->p += (size_t)len + 1;
	c->left -= (size_t)len + 1;
	return s;
}

static const char *get_abs_path(struct cursor *c)
{
	const char *s = get_str(c);
	if (s[0] != '/')
		plan_fail("record %u: path \"%s\" is not absolute", c->tag, s);
	return s;
}

/* Appends one zeroed element to a growing array. */
static void *push(void *arrp, size_t *n, size_t size)
{
	void **arr = arrp;
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) { /* capacity 4, 8, 16, ... */
		size_t cap = *n ? *n * 2 : 4;
		void *p = realloc(*arr, cap * size);
		if (p == NULL)
			stk_fail(ENOMEM, "plan", "out of memory");
		*arr = p;
	}
	void *el = (uint8_t *)*arr + *n * size;
	memset(el, 0, size);
	(*n)++;
	return el;
}

static void once(uint64_t *seen, uint32_t tag)
{
	if (*seen & (1ull << tag))
		plan_fail("record %u appears twice", tag);
	*seen |= 1ull << tag;
}

static bool single_ns_flag(uint32_t t)
{
	return t != 0 && (t & (t - 1)) == 0 && (t & NS_FLAGS) == t;
}

/* n strings into a NULL-terminated array; every string takes at least 5 bytes, which bounds n. */
static const char **get_str_array(struct cursor *c, const char *what, const char *path)
{
	uint32_t n = get_u32(c);
	if (n > c->left / 5)
		plan_fail("hook %s: %u %s overrun the record", path, n, what);
	const char **arr = calloc((size_t)n + 1, sizeof *arr);
	if (arr == NULL)
		stk_fail(ENOMEM, "plan", "out of memory");
	for (uint32_t i = 0; i < n; i++)
		arr[i] = get_str(c);
	return arr;
}

static void parse_hook(struct stk_plan *pl, struct cursor *c)
{
	struct stk_hook *h = push(&pl->hooks, &pl->n_hooks, sizeof *h);
	h->phase = get_u32(c);
	h->timeout_ms = get_u32(c);
	h->path = get_abs_path(c);
	if (h->phase != STK_HOOK_PHASE_CREATE_CONTAINER && h->phase != STK_HOOK_PHASE_START_CONTAINER)
		plan_fail("hook %s: unknown phase %u", h->path, h->phase);
	h->argv = get_str_array(c, "args", h->path);
	h->envp = get_str_array(c, "env entries", h->path);
	/* As execve's callers do: with no args, the program's own path is its argv[0]. */
	if (h->argv[0] == NULL) {
		free(h->argv);
		h->argv = calloc(2, sizeof *h->argv);
		if (h->argv == NULL)
			stk_fail(ENOMEM, "plan", "out of memory");
		h->argv[0] = h->path;
	}
}

/* u32 n, then n struct sock_filter (u16 code, u8 jt, u8 jf, u32 k) filling the rest of the record. */
static struct sock_filter *get_filter(struct cursor *c, uint16_t *len)
{
	uint32_t n = get_u32(c);
	if (n == 0 || n > BPF_MAXINSNS || (size_t)n * 8 != c->left)
		plan_fail("record %u: seccomp program of %u instructions does not match its record", c->tag, n);
	struct sock_filter *f = calloc(n, sizeof *f);
	if (f == NULL)
		stk_fail(ENOMEM, "plan", "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		uint32_t w0 = get_u32(c);
		f[i].code = (uint16_t)(w0 & 0xffff);
		f[i].jt = (uint8_t)(w0 >> 16);
		f[i].jf = (uint8_t)(w0 >> 24);
		f[i].k = get_u32(c);
	}
	*len = (uint16_t)n;
	return f;
}

static void parse_record(struct stk_plan *pl, struct cursor *c, uint64_t *seen)
{
	switch (c->tag) {
	case STK_PLAN_TAG_CLONE_FLAGS:
		once(seen, c->tag);
		pl->clone_flags = get_u32(c);
		if (pl->clone_flags & ~(uint32_t)NS_FLAGS)
			plan_fail("clone flags 0x%x name something other than namespaces", pl->clone_flags);
		break;
	case STK_PLAN_TAG_JOIN_NS: {
		struct stk_join_ns *j = push(&pl->join_ns, &pl->n_join_ns, sizeof *j);
		j->nstype = get_u32(c);
		j->path = get_abs_path(c);
		if (!single_ns_flag(j->nstype))
			plan_fail("namespace type 0x%x of %s is not one CLONE_NEW* flag", j->nstype, j->path);
		break;
	}
	case STK_PLAN_TAG_UID_MAP:
		once(seen, c->tag);
		pl->uid_map = get_str(c);
		break;
	case STK_PLAN_TAG_GID_MAP:
		once(seen, c->tag);
		pl->gid_map = get_str(c);
		break;
	case STK_PLAN_TAG_HOSTNAME:
		once(seen, c->tag);
		pl->hostname = get_str(c);
		break;
	case STK_PLAN_TAG_DOMAINNAME:
		once(seen, c->tag);
		pl->domainname = get_str(c);
		break;
	case STK_PLAN_TAG_ROOTFS:
		once(seen, c->tag);
		pl->has_rootfs = true;
		pl->rootfs_flags = get_u32(c);
		pl->rootfs_source = get_abs_path(c);
		pl->rootfs_mountpoint = get_abs_path(c);
		if (pl->rootfs_flags & ~(STK_ROOTFS_READONLY | STK_ROOTFS_RECURSIVE_READONLY | STK_ROOTFS_OVERLAY |
					 STK_ROOTFS_NO_PIVOT | STK_ROOTFS_HOST_MOUNT_NS))
			plan_fail("unknown rootfs flags 0x%x", pl->rootfs_flags);
		break;
	case STK_PLAN_TAG_ROOTFS_PROPAGATION:
		once(seen, c->tag);
		pl->has_rootfs_propagation = true;
		pl->rootfs_propagation = get_u32(c);
		break;
	case STK_PLAN_TAG_MOUNT: {
		struct stk_mount *m = push(&pl->mounts, &pl->n_mounts, sizeof *m);
		m->flags = get_u32(c);
		m->propagation = get_u32(c);
		m->rattr = get_u32(c);
		m->mflags = get_u32(c);
		m->source = get_str(c);
		m->target = get_abs_path(c);
		m->fstype = get_str(c);
		m->data = get_str(c);
		m->uid_map = m->gid_map = NULL;
		m->userns_fd = -1;
		if (m->mflags & ~(STK_MOUNTF_BIND | STK_MOUNTF_REMOUNT | STK_MOUNTF_SOURCE_IN_CONTAINER | STK_MOUNTF_COPYUP | STK_MOUNTF_SOURCE_RESOLVED))
			plan_fail("mount %s: unknown flags 0x%x", m->target, m->mflags);
		if ((m->mflags & STK_MOUNTF_SOURCE_IN_CONTAINER) && m->source[0] != '/')
			plan_fail("mount %s: container source \"%s\" is not absolute", m->target, m->source);
		break;
	}
	case STK_PLAN_TAG_DEVICE: {
		struct stk_device *d = push(&pl->devices, &pl->n_devices, sizeof *d);
		d->type = get_u32(c);
		d->major = get_u32(c);
		d->minor = get_u32(c);
		d->mode = get_u32(c);
		d->uid = get_u32(c);
		d->gid = get_u32(c);
		d->dflags = get_u32(c);
		d->path = get_abs_path(c);
		if (d->type != 'c' && d->type != 'b' && d->type != 'u' && d->type != 'p')
			plan_fail("device %s: unknown type %u", d->path, d->type);
		if (d->dflags & ~STK_DEVICEF_BIND)
			plan_fail("device %s: unknown flags 0x%x", d->path, d->dflags);
		break;
	}
	case STK_PLAN_TAG_SYMLINK: {
		struct stk_symlink *s = push(&pl->symlinks, &pl->n_symlinks, sizeof *s);
		s->target = get_str(c);
		s->linkpath = get_abs_path(c);
		if (s->target[0] == '\0')
			plan_fail("symlink %s: empty target", s->linkpath);
		break;
	}
	case STK_PLAN_TAG_SYSCTL: {
		struct stk_sysctl *s = push(&pl->sysctls, &pl->n_sysctls, sizeof *s);
		s->key = get_str(c);
		s->value = get_str(c);
		if (s->key[0] == '\0')
			plan_fail("empty sysctl key");
		break;
	}
	case STK_PLAN_TAG_MASKED_PATH:
		*(const char **)push(&pl->masked, &pl->n_masked, sizeof(char *)) = get_abs_path(c);
		break;
	case STK_PLAN_TAG_READONLY_PATH:
		*(const char **)push(&pl->readonly, &pl->n_readonly, sizeof(char *)) = get_abs_path(c);
		break;
	case STK_PLAN_TAG_RLIMIT: {
		struct stk_rlimit *r = push(&pl->rlimits, &pl->n_rlimits, sizeof *r);
		r->resource = get_u32(c);
		r->soft = get_u64(c);
		r->hard = get_u64(c);
		if (r->resource >= RLIM_NLIMITS)
			plan_fail("unknown rlimit resource %u", r->resource);
		break;
	}
	case STK_PLAN_TAG_OOM_SCORE_ADJ:
		once(seen, c->tag);
		pl->has_oom_score_adj = true;
		pl->oom_score_adj = (int32_t)get_u32(c);
		if (pl->oom_score_adj < -1000 || pl->oom_score_adj > 1000)
			plan_fail("oom_score_adj %d is out of range", pl->oom_score_adj);
		break;
	case STK_PLAN_TAG_USER: {
		once(seen, c->tag);
		pl->has_user = true;
		pl->uid = get_u32(c);
		pl->gid = get_u32(c);
		pl->umask = get_u32(c);
		uint32_t n = get_u32(c);
		if (n > 65536 || (size_t)n * 4 != c->left)
			plan_fail("user record: %u additional gids do not match its length", n);
		if (pl->umask != STK_UMASK_UNSET && pl->umask > 0777)
			plan_fail("umask 0%o is out of range", pl->umask);
		pl->gids = calloc(n ? n : 1, sizeof(gid_t));
		if (pl->gids == NULL)
			stk_fail(ENOMEM, "plan", "out of memory");
		for (uint32_t i = 0; i < n; i++)
			pl->gids[i] = get_u32(c);
		pl->n_gids = n;
		break;
	}
	case STK_PLAN_TAG_CAPS:
		once(seen, c->tag);
		pl->has_caps = true;
		pl->cap_bounding = get_u64(c);
		pl->cap_effective = get_u64(c);
		pl->cap_inheritable = get_u64(c);
		pl->cap_permitted = get_u64(c);
		pl->cap_ambient = get_u64(c);
		break;
	case STK_PLAN_TAG_NO_NEW_PRIVS:
		once(seen, c->tag);
		pl->no_new_privs = true;
		break;
	case STK_PLAN_TAG_MONITOR:
		once(seen, c->tag);
		pl->monitor = true;
		break;
	case STK_PLAN_TAG_LOOPBACK_UP:
		once(seen, c->tag);
		pl->loopback_up = true;
		break;
	case STK_PLAN_TAG_INIT:
		once(seen, c->tag);
		pl->init = true;
		break;
	case STK_PLAN_TAG_HOLD:
		once(seen, c->tag);
		pl->hold = true;
		break;
	case STK_PLAN_TAG_TIED:
		once(seen, c->tag);
		pl->tied_to = get_u32(c);
		if (pl->tied_to == 0)
			plan_fail("tied to pid 0");
		break;
	case STK_PLAN_TAG_INIT_TIMEOUT:
		once(seen, c->tag);
		pl->timeout_ms = get_u32(c);
		pl->grace_ms = get_u32(c);
		if (pl->timeout_ms == 0)
			plan_fail("a timeout of 0 ms");
		break;
	case STK_PLAN_TAG_MOUNT_IDMAP: {
		struct stk_mount *m = pl->n_mounts > 0 ? &pl->mounts[pl->n_mounts - 1] : NULL;
		if (m == NULL || !(m->mflags & STK_MOUNTF_BIND) || (m->mflags & STK_MOUNTF_SOURCE_IN_CONTAINER) || m->uid_map != NULL)
			plan_fail("an id map that follows no host bind, or a second one for it");
		m->uid_map = get_str(c);
		m->gid_map = get_str(c);
		if (m->uid_map[0] == '\0' || m->gid_map[0] == '\0')
			plan_fail("mount %s: an empty id map", m->target);
		break;
	}
	case STK_PLAN_TAG_OVERLAY_TMPFS:
		once(seen, c->tag);
		pl->overlay_tmpfs = get_str(c);
		break;
	case STK_PLAN_TAG_TERMINAL:
		once(seen, c->tag);
		pl->terminal = true;
		break;
	case STK_PLAN_TAG_CONSOLE_SIZE:
		once(seen, c->tag);
		pl->console_rows = get_u32(c);
		pl->console_cols = get_u32(c);
		if (pl->console_rows > 0xffff || pl->console_cols > 0xffff)
			plan_fail("a console size past 65535");
		pl->has_console_size = true;
		break;
	case STK_PLAN_TAG_CWD:
		once(seen, c->tag);
		pl->cwd = get_abs_path(c);
		break;
	case STK_PLAN_TAG_ARG:
		*(const char **)push(&pl->argv, &pl->argc, sizeof(char *)) = get_str(c);
		break;
	case STK_PLAN_TAG_ENV:
		*(const char **)push(&pl->envp, &pl->envc, sizeof(char *)) = get_str(c);
		break;
	case STK_PLAN_TAG_CONSOLE_SOCKET:
		once(seen, c->tag);
		pl->console_socket = get_str(c);
		break;
	case STK_PLAN_TAG_START_SOCKET:
		once(seen, c->tag);
		pl->start_socket = get_str(c);
		break;
	case STK_PLAN_TAG_PRESERVE_FDS:
		once(seen, c->tag);
		pl->preserve_fds = get_u32(c);
		if (pl->preserve_fds > 1u << 20)
			plan_fail("%u preserved fds is too many", pl->preserve_fds);
		break;
	case STK_PLAN_TAG_SESSION_KEYRING:
		once(seen, c->tag);
		pl->session_keyring = get_str(c);
		break;
	case STK_PLAN_TAG_SECCOMP:
		once(seen, c->tag);
		pl->has_seccomp = true;
		pl->seccomp_flags = get_u32(c);
		pl->seccomp_filter = get_filter(c, &pl->seccomp_len);
		break;
	case STK_PLAN_TAG_SENTRY:
		once(seen, c->tag);
		pl->has_sentry = true;
		pl->sentry_fd = get_u32(c);
		pl->sentry_flags = get_u32(c);
		pl->sentry_filter = get_filter(c, &pl->sentry_len);
		if (pl->sentry_fd > INT_MAX)
			plan_fail("sentry socket fd %u is out of range", pl->sentry_fd);
		break;
	case STK_PLAN_TAG_CHROOT:
		once(seen, c->tag);
		pl->chroot_path = get_abs_path(c);
		break;
	case STK_PLAN_TAG_SENTRY_MOUNT:
		if (pl->n_sentry_mounts == STK_MAX_SENTRY_MOUNTS)
			plan_fail("more than %d sentry mounts", STK_MAX_SENTRY_MOUNTS);
		pl->sentry_mounts[pl->n_sentry_mounts++] = get_abs_path(c);
		break;
	case STK_PLAN_TAG_CGROUP_JOIN: {
		const char **cg = push(&pl->cgroups, &pl->n_cgroups, sizeof *cg);
		*cg = get_abs_path(c);
		break;
	}
	case STK_PLAN_TAG_HOOK:
		parse_hook(pl, c);
		break;
	case STK_PLAN_TAG_HOOK_POINTS:
		once(seen, c->tag);
		pl->hook_points = get_u32(c);
		if (pl->hook_points & ~STK_HOOKF_CREATE)
			plan_fail("unknown hook points 0x%x", pl->hook_points);
		break;
	default:
		plan_fail("unknown record tag %u", c->tag);
	}
	if (c->left != 0)
		plan_fail("record %u has %zu bytes past its fields", c->tag, c->left);
}

static bool joins(const struct stk_plan *pl, uint32_t nstype)
{
	for (size_t i = 0; i < pl->n_join_ns; i++)
		if (pl->join_ns[i].nstype == nstype)
			return true;
	return false;
}

/* Cross-record rules: each one stops a plan that would change the host instead of the container. */
static void check_plan(struct stk_plan *pl)
{
	if (pl->argc == 0)
		plan_fail("no process arguments");
	if (!pl->has_caps)
		plan_fail("no capabilities record");
	if ((pl->clone_flags & CLONE_NEWUSER) && (pl->uid_map == NULL || pl->gid_map == NULL))
		plan_fail("a new user namespace needs both a uid map and a gid map");
	if (!(pl->clone_flags & CLONE_NEWUSER) && (pl->uid_map != NULL || pl->gid_map != NULL))
		plan_fail("id maps given without a new user namespace");
	if ((pl->hostname || pl->domainname) && !(pl->clone_flags & CLONE_NEWUTS) && !joins(pl, CLONE_NEWUTS))
		plan_fail("hostname or domainname without a UTS namespace");
	bool own_mnt = (pl->clone_flags & CLONE_NEWNS) || joins(pl, CLONE_NEWNS);
	bool host_mnt = pl->has_rootfs && (pl->rootfs_flags & STK_ROOTFS_HOST_MOUNT_NS);
	/* A root in the host's mount namespace only when the plan says so, and then nothing that
	 * would act on the host's mounts: masks, read-only paths, the sentry's detached trees. */
	if (pl->has_rootfs && !own_mnt && !host_mnt)
		plan_fail("a root file system outside a mount namespace of the container's own");
	if (host_mnt && own_mnt)
		plan_fail("a root in the host's mount namespace, and a mount namespace");
	if (pl->chroot_path != NULL && (pl->has_rootfs || own_mnt))
		plan_fail("a chroot with a root file system or a mount namespace");
	if (host_mnt && (pl->n_masked > 0 || pl->n_readonly > 0 || pl->n_sentry_mounts > 0 || pl->has_sentry ||
			 (pl->rootfs_flags & (STK_ROOTFS_NO_PIVOT | STK_ROOTFS_OVERLAY | STK_ROOTFS_RECURSIVE_READONLY))))
		plan_fail("masks, read-only paths, the sentry or another root mode in the host's mount namespace");
	if (!pl->has_rootfs && (pl->n_mounts || pl->n_devices || pl->n_symlinks || pl->n_masked ||
				pl->n_readonly || pl->has_rootfs_propagation || (pl->clone_flags & CLONE_NEWNS)))
		plan_fail("mounts, devices, links or a new mount namespace without a root file system");
	if (pl->has_console_size && !pl->terminal)
		plan_fail("a console size without a terminal");
	if (pl->terminal && pl->console_socket == NULL)
		plan_fail("a terminal without a console socket");
	if (pl->timeout_ms && !pl->init)
		plan_fail("a timeout without an init to keep it");
	if (pl->hold && !pl->init)
		plan_fail("a container held open without an init");
	if (pl->init && !(pl->clone_flags & CLONE_NEWPID))
		plan_fail("an init without a pid namespace of its own");
	if (pl->tied_to && !pl->monitor)
		plan_fail("a container tied to its caller without a monitor");
	if (pl->overlay_tmpfs && !(pl->rootfs_flags & STK_ROOTFS_OVERLAY))
		plan_fail("overlay tmpfs options without an overlay root");
	if ((pl->clone_flags & CLONE_NEWNS) && joins(pl, CLONE_NEWNS))
		plan_fail("both a new and a joined mount namespace");
	/* Without no_new_privs the filter would have to go in before the user switch, and setup
	 * itself would then wait on a supervisor that holds no listener yet. */
	if (pl->n_sentry_mounts > 0 && !pl->has_sentry)
		stk_fail(EINVAL, "sentry", "sentry mounts without a sentry (TAG_SENTRY)");
	if (pl->has_sentry && !pl->no_new_privs)
		stk_fail(EINVAL, "sentry", "the sentry filter needs no_new_privs (TAG_NO_NEW_PRIVS)");

	pl->argv = realloc(pl->argv, (pl->argc + 1) * sizeof(char *));
	pl->envp = realloc(pl->envp, (pl->envc + 1) * sizeof(char *));
	if (pl->argv == NULL || pl->envp == NULL)
		stk_fail(ENOMEM, "plan", "out of memory");
	pl->argv[pl->argc] = NULL;
	pl->envp[pl->envc] = NULL;
}

static void read_whole(int fd, struct stk_plan *pl)
{
	size_t cap = 16384, len = 0;
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		stk_fail(ENOMEM, "plan", "out of memory");
	for (;;) {
		if (len == cap) {
			if (cap >= PLAN_MAX_BYTES)
				stk_fail(EFBIG, "plan", "plan is larger than %u bytes", PLAN_MAX_BYTES);
			cap *= 2;
			uint8_t *p = realloc(buf, cap);
			if (p == NULL)
				stk_fail(ENOMEM, "plan", "out of memory");
			buf = p;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			stk_fail_errno("plan", "read plan fd %d", fd);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	pl->buf = buf;
	pl->len = len;
}

void stk_plan_read(int fd, struct stk_plan *pl)
{
	uint64_t seen = 0;
	struct cursor all;
	bool ended = false;

	memset(pl, 0, sizeof *pl);
	pl->umask = STK_UMASK_UNSET;
	read_whole(fd, pl);

	all.p = pl->buf;
	all.left = pl->len;
	all.tag = 0;
	if (all.left < 4)
		plan_fail("plan is shorter than its magic number");
	uint32_t magic = get_u32(&all);
	if (magic != STK_PLAN_MAGIC)
		plan_fail("bad magic 0x%08x", magic);

	while (all.left > 0) {
		if (ended)
			plan_fail("%zu bytes after the end record", all.left);
		if (all.left < 8)
			plan_fail("truncated record header");
		all.tag = 0;
		uint32_t tag = get_u32(&all);
		uint32_t len = get_u32(&all);
		if (len > all.left)
			plan_fail("record %u of %u bytes overruns the plan", tag, len);
		struct cursor c = { .p = all.p, .left = len, .tag = tag };
		all.p += len;
		all.left -= len;
		if (tag == STK_PLAN_TAG_END) {
			if (len != 0)
				plan_fail("end record has a payload");
			ended = true;
			continue;
		}
		parse_record(pl, &c, &seen);
	}
	if (!ended)
		plan_fail("plan has no end record");
	check_plan(pl);
}
