/*
 * Fuzz target: field tables and arrays.  The input is read as the contents
 * of a table, as the contents of an array, as two tables (its halves, to
 * compare) and as a length-prefixed table (rd_table).  Whatever validates
 * is walked to the bottom by fuzz_walk_table(); whatever does not must
 * fail with one of the documented codes.
 */
#include "fuzz.h"

static void check_status(int rc)
{
	FUZZ_CHECK(rc == CODEC_OK || rc == CODEC_E_TRUNCATED ||
	           rc == CODEC_E_FIELD_TYPE || rc == CODEC_E_TABLE_DEPTH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ftable t = { data, size };
	struct fvalue v;
	struct rd r;
	int rc;

	rc = ftable_validate(data, size, 0);
	check_status(rc);
	if (rc == CODEC_OK)
		fuzz_walk_table(t, data, size);
	else
		/* the lookup of an unvalidated table stays in bounds too */
		(void)ftable_get(t, "x-match", &v);

	rc = farray_validate(data, size, 0);
	check_status(rc);
	if (rc == CODEC_OK)
		fuzz_walk_array(t, data, size);

	/* Two tables from the halves: ftable_equal() must be symmetric and
	 * agree with the entry counts, whatever the tables hold. */
	struct ftable a = { data, size / 2 }, b = { data + size / 2, size - size / 2 };
	if (ftable_validate(a.ptr, a.len, 0) == CODEC_OK &&
	    ftable_validate(b.ptr, b.len, 0) == CODEC_OK) {
		bool eq = ftable_equal(a, b);
		FUZZ_CHECK(eq == ftable_equal(b, a));
		if (eq)
			FUZZ_CHECK(ftable_count(a) == ftable_count(b));
	}

	r = rd_init(data, size);
	rc = rd_table(&r, &t);
	check_status(rc);
	if (rc == CODEC_OK) {
		FUZZ_CHECK(t.len + 4 + r.left == size);
		fuzz_walk_table(t, data, size);
	}
	return 0;
}
