/*
 * Replay driver: the same fuzz target, linked with this main() instead of
 * libFuzzer, feeds it every file of its committed corpus, so `make check`
 * (built with any compiler, under the sanitizers when configured) proves
 * that no seed or past crash reproducer crashes today.
 *
 * With arguments it replays those files or directories instead; without,
 * it replays $top_srcdir/tests/fuzz/corpus/<target>/ (top_srcdir is set
 * by the test harness, "." otherwise).  An empty or missing corpus fails:
 * a replay test that replays nothing proves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define FUZZ_STR2(x) #x
#define FUZZ_STR(x) FUZZ_STR2(x)

/* Read a whole file into an exactly-sized buffer, so ASan sees overreads. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: %s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

/* Replay a file, or every regular file of a directory in name order. */
static int replay_path(const char *path, size_t *count)
{
	struct dirent **names;
	struct stat st;
	int n, i, rc = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (replay_file(path) != 0)
			return -1;
		(*count)++;
		return 0;
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		char file[4096];
		if (names[i]->d_name[0] != '.' && rc == 0) {
			snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
			if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
				if (replay_file(file) != 0)
					rc = -1;
				else
					(*count)++;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *target = FUZZ_STR(FUZZ_TARGET);
	size_t count = 0;
	int i;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			if (replay_path(argv[i], &count) != 0)
				return EXIT_FAILURE;
	} else {
		const char *top = getenv("top_srcdir");
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s",
		         top ? top : ".", target);
		if (replay_path(dir, &count) != 0)
			return EXIT_FAILURE;
	}
	if (count == 0) {
		fprintf(stderr, "replay: %s: no inputs found\n", target);
		return EXIT_FAILURE;
	}
	printf("%s: replayed %zu inputs\n", target, count);
	return EXIT_SUCCESS;
}
