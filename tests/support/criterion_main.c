/* main() for every Criterion test program (linked before libcriterion, so it replaces
 * Criterion's own): runs the tests as Criterion's main does, prints one line
 * "SKIP: suite::test: reason" per skipped test (scripts/run-tests lists them), and exits 77
 * (automake's SKIP) when every test of the program was skipped, so a program that could
 * test nothing is not reported as passed. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <stdio.h>

static size_t tests_run, tests_skipped;

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
    if (stats->test_status != CR_STATUS_SKIPPED)
        return;
    fprintf(stderr, "SKIP: %s::%s: %s\n", stats->test->category, stats->test->name,
            stats->message && stats->message[0] ? stats->message : "(no reason given)");
    fflush(stderr);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    tests_run = stats->nb_tests;
    tests_skipped = stats->tests_skipped;
}

int main(int argc, char *argv[])
{
    struct criterion_test_set *tests = criterion_initialize();
    int result = 0;
    if (criterion_handle_args(argc, argv, true))
        result = !criterion_run_all_tests(tests);
    criterion_finalize(tests);
    if (result == 0 && tests_run > 0 && tests_skipped == tests_run)
        return 77;
    return result;
}
