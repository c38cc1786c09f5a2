/*
 * Replay driver: links with one fuzz target instead of libFuzzer and feeds
 * it every input of its corpus once, so `make check` proves, with gcc and
 * ASan/UBSan only, that no input ever found (crashes included) breaks the
 * code again.
 *
 *   replay_TARGET [FILE|DIR...]   default: fuzz/corpus/TARGET (FUZZ_CORPUS)
 *
 * Each input is handed over in a buffer of exactly its size, as libFuzzer
 * does, so a read past its end is caught. A sanitizer report or a failed
 * invariant aborts; an empty or missing corpus is a failure too.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				abort();
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	/* Exactly `len` bytes, so ASan sees any overread. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, int *count)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (!names || asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
			abort();
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp);  /* a stable order to report */
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (!r && run_path(names[i], count))
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	static char *dflt[] = { FUZZ_CORPUS, NULL };
	char **paths = argc > 1 ? argv + 1 : dflt;
	int count = 0;
	for (; *paths; paths++)
		if (run_path(*paths, &count))
			return 1;
	if (count == 0) {
		fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
		return 1;
	}
	printf("fuzz replay %s: %d inputs, no finding\n", FUZZ_TARGET, count);
	return 0;
}
