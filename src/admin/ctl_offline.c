/*
 * warrenctl's offline commands, fsck and dump: they work on a stopped
 * broker's data directory through the store's checker, never the daemon.
 */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "admin/admin.h"
#include "admin/ctl.h"
#include "store/store.h"
#include "util/json.h"
#include "util/xalloc.h"

/*
 * Take the daemon's pid-file lock (DIR/warrend.pid, its default place) and
 * keep it while working, so no warrend starts on the directory meanwhile.
 * The store's own lock (DIR/lock, taken by store_fsck and store_dump) also
 * catches a daemon whose pid file lives elsewhere.  Returns the descriptor
 * to close at the end, -1 when there is no pid file to hold, or -2 after
 * saying that a daemon runs.
 */
static int offline_lock(const struct ctl *c, const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/warrend.pid", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	int e = errno;
	char pid[32] = "";
	ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
	pid[n > 0 ? n : 0] = '\0';
	pid[strcspn(pid, "\n")] = '\0';
	close(fd);
	if (e == EWOULDBLOCK)
		fprintf(stderr, "Error: warrend (pid %s) is running on %s; stop it before %s\n",
		        pid[0] ? pid : "?", dir, c->cmd->name);
	else
		fprintf(stderr, "Error: cannot lock %s: %s\n", path, strerror(e));
	return -2;
}

static int offline_fsck(struct ctl *c, const char *dir)
{
	if (!c->quiet)
		printf("Checking the message store in %s%s ...\n", dir,
		       c->repair ? " and repairing it" : "");
	fflush(stdout);
	int r = store_fsck(dir, c->repair, stdout);
	fflush(stdout);
	if (r < 0)
		return CTL_FAILED;
	if (r == 0)
		return CTL_OK;
	if (r == 2)
		return CTL_DAMAGED;
	/* Repaired: check again, since the repair reports what it attempted. */
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	int again = mem ? store_fsck(dir, false, mem) : -1;
	if (mem)
		fclose(mem);
	int rc;
	if (again == 0) {
		printf("re-check after the repair: clean\n");
		rc = CTL_REPAIRED;
	} else {
		printf("re-check after the repair:\n");
		if (buf)
			fwrite(buf, 1, len, stdout);
		rc = again < 0 ? CTL_FAILED : CTL_DAMAGED;
	}
	free(buf);
	return rc;
}

/* The store id of a durable queue, from DIR/defs.json; CTL_OK or CTL_FAILED. */
static int offline_queue_id(const char *dir, const char *vhost, const char *name, uint32_t *id)
{
	char path[4096];
	size_t len;
	snprintf(path, sizeof(path), "%s/defs.json", dir);
	char *text = ctl_read_input(path, JSON_MAX_INPUT, &len);
	if (!text) {
		if (errno == ENOENT)
			fprintf(stderr, "Error: %s does not exist: no durable queue was ever "
			                "declared in %s\n", path, dir);
		else
			fprintf(stderr, "Error: %s: %s\n", path, strerror(errno));
		return CTL_FAILED;
	}
	struct json_doc doc;
	char err[256];
	int rc = CTL_FAILED;
	if (json_parse(&doc, text, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "Error: %s: not valid JSON: %s\n", path, err);
		goto out;
	}
	const struct json_value *meta = json_get(doc.root, "warren");
	const struct json_value *ids = meta ? json_get(meta, "queue_ids") : NULL;
	if (!ids || ids->type != JSON_ARRAY) {
		fprintf(stderr, "Error: %s is not a Warren definitions file (no warren.queue_ids)\n",
		        path);
		goto out;
	}
	size_t nlen = strlen(name);
	for (size_t i = 0; i < ids->u.arr.n; i++) {
		const struct json_value *e = &ids->u.arr.items[i];
		const struct json_value *n = json_get(e, "name");
		const struct json_value *v = json_get(e, "id");
		const char *vh = json_get_str(e, "vhost");
		if (!vh || strcmp(vh, vhost) != 0 || !n || n->type != JSON_STRING ||
		    n->u.str.len != nlen || memcmp(n->u.str.ptr, name, nlen) != 0)
			continue;
		if (!v || v->type != JSON_NUMBER || !v->u.num.is_int || v->u.num.i <= 0 ||
		    v->u.num.i > UINT32_MAX) {
			fprintf(stderr, "Error: %s: queue '%s' in vhost '%s' has no valid id\n", path,
			        name, vhost);
			goto out;
		}
		*id = (uint32_t)v->u.num.i;
		rc = CTL_OK;
		goto out;
	}
	fprintf(stderr, "Error: no durable queue '%s' in vhost '%s' in %s\n", name, vhost, path);
out:
	json_doc_free(&doc);
	free(text);
	return rc;
}

static int offline_dump(struct ctl *c, const char *dir)
{
	const char *vhost = c->vhost ? c->vhost : "/";
	uint32_t id = 0;
	int rc = offline_queue_id(dir, vhost, c->pos[0], &id);
	if (rc != CTL_OK)
		return rc;
	if (!c->quiet)
		printf("Dumping queue '%s' in vhost '%s' (store queue %u) from %s ...\n", c->pos[0],
		       vhost, (unsigned)id, dir);
	fflush(stdout);
	rc = store_dump(dir, id, stdout) == 0 ? CTL_OK : CTL_FAILED;
	if (fflush(stdout) != 0 && rc == CTL_OK) {
		fprintf(stderr, "Error: writing the output: %s\n", strerror(errno));
		rc = CTL_FAILED;
	}
	return rc;
}

/* fsck and dump: no daemon, only its data directory, which must be idle. */
int ctl_run_offline(struct ctl *c, const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		fprintf(stderr, "Error: data directory %s: %s\n", dir, strerror(errno));
		return CTL_FAILED;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "Error: data directory %s: not a directory\n", dir);
		return CTL_FAILED;
	}
	int lock = offline_lock(c, dir);
	if (lock == -2)
		return CTL_FAILED;
	/* A daemon whose pid file lives elsewhere still holds the store's lock.
	 * Probe it here for a clear message; the store takes it for real. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/lock", dir);
	int probe = open(path, O_RDONLY | O_CLOEXEC);
	if (probe >= 0) {
		bool busy = flock(probe, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
		close(probe);
		if (busy) {
			fprintf(stderr, "Error: a warrend is using %s (%s is locked); stop it before %s\n",
			        dir, path, c->cmd->name);
			if (lock >= 0)
				close(lock);
			return CTL_FAILED;
		}
	}
	int rc = !strcmp(c->cmd->name, "fsck") ? offline_fsck(c, dir) : offline_dump(c, dir);
	if (lock >= 0)
		close(lock);
	return rc;
}

