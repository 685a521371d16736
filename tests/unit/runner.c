/*
 * One runner for every unit-test binary.  CK_RUN_SUITE / CK_RUN_CASE and
 * CK_FORK are honoured by Check itself; the exit status tells automake.
 */
#include <stdlib.h>

#include "runner.h"

int main(void)
{
	SRunner *sr = srunner_create(unit_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
