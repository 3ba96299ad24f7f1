/* A main() for fuzz targets built without libFuzzer: runs the target once
 * on every regular file in the directories (or on the files) named on the
 * command line, so CI replays the seed corpora with any compiler.  Fails
 * when a path cannot be read or nothing was run at all. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_FILE (16u << 20)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	struct stat st;
	size_t len;
	int error = -1;

	if (!f) {
		perror(path);
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0 || st.st_size > REPLAY_MAX_FILE) {
		fprintf(stderr, "%s: unreadable or larger than %u bytes\n", path, REPLAY_MAX_FILE);
		goto done;
	}
	len = (size_t)st.st_size;
	/* Exactly `len` bytes, so ASan catches any read past the input. */
	buf = malloc(len ? len : 1);
	if (!buf || fread(buf, 1, len, f) != len) {
		fprintf(stderr, "%s: cannot read\n", path);
		goto done;
	}
	LLVMFuzzerTestOneInput(buf, len);
	error = 0;
done:
	free(buf);
	fclose(f);
	return error;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int run_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *entry;
	char path[4096];
	struct stat st;
	int error = 0;

	if (!d) {
		perror(dir);
		return -1;
	}
	while (error == 0 && (entry = readdir(d)) != NULL) {
		if (entry->d_name[0] == '.')
			continue;
		if (join(path, sizeof(path), dir, entry->d_name) < 0 || stat(path, &st) < 0) {
			error = -1;
			break;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		error = run_file(path);
		if (error == 0)
			(*count)++;
	}
	closedir(d);
	return error;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) < 0 : run_file(argv[i]) < 0)
			return 1;
		if (!S_ISDIR(st.st_mode))
			count++;
	}
	printf("replayed %zu inputs\n", count);
	return count > 0 ? 0 : 1;
}
