/*
 * The libpmemobj side of `npm run bench -- pmpool`: alloc+free pairs per
 * second of one size on a pool file, so bench/pmpool.bench.ts can print our
 * pool's rate next to libpmemobj's from the same run.
 *
 * Each pair is pmemobj_alloc into a PMEMoid inside the pool's root object
 * (the fail-safe form: after a crash the allocation either happened and the
 * oid names it, or it did not) and pmemobj_free of that oid.
 *
 * usage: pmemobj_bench POOL_FILE POOL_BYTES ALLOC_BYTES MILLISECONDS
 * prints: "pairs PAIRS_PER_S"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <libpmemobj.h>

struct root {
	PMEMoid oid;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s POOL_FILE POOL_BYTES ALLOC_BYTES MILLISECONDS\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	size_t pool_bytes = strtoull(argv[2], NULL, 0);
	size_t size = strtoull(argv[3], NULL, 0);
	double limit = atof(argv[4]) / 1000.0;

	unlink(path);
	PMEMobjpool *pop = pmemobj_create(path, "pmpool-bench", pool_bytes, 0600);
	if (pop == NULL) {
		fprintf(stderr, "pmemobj_create(%s): %s\n", path, pmemobj_errormsg());
		return 1;
	}
	PMEMoid root_oid = pmemobj_root(pop, sizeof(struct root));
	struct root *root = pmemobj_direct(root_oid);

	/* warm up: the first allocation of a size class sets up its run */
	for (int i = 0; i < 1000; i++) {
		if (pmemobj_alloc(pop, &root->oid, size, 1, NULL, NULL) != 0) {
			fprintf(stderr, "pmemobj_alloc(%zu): %s\n", size, pmemobj_errormsg());
			return 1;
		}
		pmemobj_free(&root->oid);
	}

	uint64_t pairs = 0;
	double start = now_s(), elapsed;
	do {
		for (int i = 0; i < 256; i++) {
			if (pmemobj_alloc(pop, &root->oid, size, 1, NULL, NULL) != 0) {
				fprintf(stderr, "pmemobj_alloc(%zu): %s\n", size, pmemobj_errormsg());
				return 1;
			}
			pmemobj_free(&root->oid);
		}
		pairs += 256;
		elapsed = now_s() - start;
	} while (elapsed < limit);

	printf("pairs %.0f\n", pairs / elapsed);
	pmemobj_close(pop);
	unlink(path);
	return 0;
}
