/*
 * The libpmemobj peer of `npm run bench -- handover --allocs=...`: what it
 * costs a new process to get back a pool holding N objects and allocate
 * again, next to a successor restoring N preserved folios.
 *
 *   pmemobj_open_bench create POOL_FILE N OBJECT_BYTES
 *     creates the pool and allocates N objects of OBJECT_BYTES (each oid
 *     kept in a persistent array in the root object), then closes it;
 *   pmemobj_open_bench open POOL_FILE
 *     times pmemobj_open + the first pmemobj_alloc (which builds the
 *     allocator's runtime state from the pool) and prints "open_alloc_ms MS".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpmemobj.h>

#define LAYOUT "livekexec-open-bench"

struct root {
	uint64_t n;
	PMEMoid objs; /* an array of n PMEMoids */
	PMEMoid extra;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int create(const char *path, uint64_t n, size_t size)
{
	/* Room for the objects, the oid array and the allocator's headers. */
	size_t pool = (size_t)n * (size + 64) + n * sizeof(PMEMoid) + (64u << 20);
	PMEMobjpool *pop = pmemobj_create(path, LAYOUT, pool, 0600);
	if (pop == NULL) {
		fprintf(stderr, "pmemobj_create: %s\n", pmemobj_errormsg());
		return 1;
	}
	PMEMoid root = pmemobj_root(pop, sizeof(struct root));
	struct root *r = pmemobj_direct(root);
	if (pmemobj_zalloc(pop, &r->objs, n * sizeof(PMEMoid), 0) != 0) {
		fprintf(stderr, "pmemobj_zalloc: %s\n", pmemobj_errormsg());
		return 1;
	}
	PMEMoid *objs = pmemobj_direct(r->objs);
	for (uint64_t i = 0; i < n; i++) {
		if (pmemobj_alloc(pop, &objs[i], size, 1, NULL, NULL) != 0) {
			fprintf(stderr, "pmemobj_alloc %llu: %s\n", (unsigned long long)i,
				pmemobj_errormsg());
			return 1;
		}
	}
	r->n = n;
	pmemobj_persist(pop, &r->n, sizeof(r->n));
	pmemobj_close(pop);
	return 0;
}

static int open_alloc(const char *path)
{
	double t0 = now_ms();
	PMEMobjpool *pop = pmemobj_open(path, LAYOUT);
	if (pop == NULL) {
		fprintf(stderr, "pmemobj_open: %s\n", pmemobj_errormsg());
		return 1;
	}
	struct root *r = pmemobj_direct(pmemobj_root(pop, sizeof(struct root)));
	if (pmemobj_alloc(pop, &r->extra, 4096, 2, NULL, NULL) != 0) {
		fprintf(stderr, "pmemobj_alloc: %s\n", pmemobj_errormsg());
		return 1;
	}
	double t1 = now_ms();
	unsigned long long n = r->n;
	pmemobj_free(&r->extra);
	pmemobj_close(pop);
	printf("open_alloc_ms %.3f objects %llu\n", t1 - t0, n);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "create") == 0)
		return create(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc == 3 && strcmp(argv[1], "open") == 0)
		return open_alloc(argv[2]);
	fprintf(stderr, "usage: %s create POOL_FILE N OBJECT_BYTES | open POOL_FILE\n", argv[0]);
	return 2;
}
