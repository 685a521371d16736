/*
 * warren-perf topology: which exchange, queues and bindings a run uses,
 * and the pipelined declare/delete calls that set them up on a control
 * connection.  The routing keys producers publish with are computed here
 * once, so the publish path only indexes an array.
 */
#ifndef WARREN_BENCH_PERF_TOPO_H
#define WARREN_BENCH_PERF_TOPO_H

#include "bench/perf.h"
#include "codec/table.h"

struct perf_topo {
	const struct perf_opts *o;
	char exchange[128];
	bool declare_x;               /* ours to declare and delete */
	struct ftable_builder qargs;  /* --queue-args as a field table */
	int nkeys;
	char (*keys)[128];            /* routing keys producers cycle over */
};

const char *perf_xtype_name(enum perf_xtype t);
void perf_topo_queue_name(const struct perf_opts *o, int i, char *buf, size_t n);

int perf_topo_init(struct perf_topo *t, const struct perf_opts *o);
void perf_topo_free(struct perf_topo *t);

/* Delete leftovers, declare the exchange, queues 0..queues-1, bindings. */
int perf_topo_setup(struct perf_conn *c, struct perf_topo *t);
/* Delete the queues and our exchange. */
int perf_topo_teardown(struct perf_conn *c, struct perf_topo *t);

int perf_topo_declare_queues(struct perf_conn *c, struct perf_topo *t,
                             int first, int n);
int perf_topo_delete_queues(struct perf_conn *c, struct perf_topo *t,
                            int first, int n);

#endif
