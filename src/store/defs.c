/*
 * The definitions file (dir/defs.json): opaque bytes from the broker,
 * replaced atomically and synchronously.  The new contents go to
 * defs.json.tmp, which is fsynced, renamed over defs.json, and then the
 * directory is fsynced so the rename itself survives a crash.  A reader
 * therefore sees the old file or the new one, never a mixture, and a
 * leftover .tmp from a crash is simply overwritten next time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"
#include "util/xalloc.h"

static char *defs_path(const struct store *s, const char *suffix)
{
	size_t n = strlen(s->dir) + strlen(suffix) + 12;
	char *p = xmalloc(n);
	snprintf(p, n, "%s/defs.json%s", s->dir, suffix);
	return p;
}

int store_defs_write(struct store *s, const uint8_t *data, size_t len, char *err, size_t errcap)
{
	char *tmp = defs_path(s, ".tmp"), *path = defs_path(s, "");
	const char *what = "write";
	const char *which = tmp;
	size_t done = 0;
	int fd, dfd = -1, rc = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		what = "create";
		goto out;
	}
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			goto out;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		what = "fsync";
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		what = "close";
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		what = "rename to defs.json";
		goto out;
	}
	which = s->dir;
	dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		what = "fsync";
		goto out;
	}
	rc = 0;
out:
	if (rc < 0 && err && errcap)
		snprintf(err, errcap, "cannot %s %s: %s", what, which, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (rc < 0 && which == tmp)
		unlink(tmp);
	free(tmp);
	free(path);
	return rc;
}

int store_defs_read(struct store *s, uint8_t **data, size_t *len)
{
	char *path = defs_path(s, "");
	struct stat st;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	free(path);
	*data = NULL;
	*len = 0;
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	size_t cap = (size_t)st.st_size;
	uint8_t *buf = xmalloc(cap + 1);
	for (;;) {
		if (done == cap) {
			/* The file may have grown; keep reading until EOF. */
			cap = cap ? cap * 2 : 4096;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + done, cap - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	buf[done] = '\0'; /* convenient for JSON parsers; not counted in len */
	*data = buf;
	*len = done;
	return 0;
}
