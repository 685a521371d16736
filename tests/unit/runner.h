/* Shared main() for the Check unit-test binaries: each binary defines
 * unit_suite() and links runner.c. */
#ifndef WARREN_TEST_RUNNER_H
#define WARREN_TEST_RUNNER_H
#include <check.h>
Suite *unit_suite(void);
#endif
