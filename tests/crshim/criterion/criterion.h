/*
 * crshim: the subset of Criterion's API that tests/ uses (Test, TestSuite
 * with .init/.fini, cr_assert*, cr_log_info), for targets Debian has no
 * libcriterion for (armhf, mipsel, s390x; and wherever it cannot be
 * installed beside the host's).  The cross builds run the same test
 * files with it, under qemu-user (scripts/cross-build.sh).
 *
 * Each test runs in its own process, as under Criterion: a failed
 * assertion ends that test's process, never the run.  It is no
 * replacement for Criterion: no parameterized tests, theories, reports
 * or parallel jobs.
 */
#ifndef SOCKSGATE_CRSHIM_CRITERION_H
#define SOCKSGATE_CRSHIM_CRITERION_H

#include <stddef.h>
#include <string.h>

struct crshim_opts {
	void (*init)(void);
	void (*fini)(void);
	double timeout;
	int disabled;
	const char *description;
};

struct crshim_test {
	const char *suite, *name;
	void (*fn)(void);
	struct crshim_opts o;
	struct crshim_test *next;
};

struct crshim_suite {
	const char *name;
	struct crshim_opts o;
	struct crshim_suite *next;
};

void crshim_register(struct crshim_test *t);
void crshim_register_suite(struct crshim_suite *s);
void crshim_check(int ok, int fatal, const char *file, int line,
		  const char *expr, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void crshim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                 \
	static void crshim_fn_##suite##_##name(void);                          \
	static struct crshim_test crshim_t_##suite##_##name = {                \
		#suite,                                                        \
		#name,                                                         \
		crshim_fn_##suite##_##name,                                    \
		{__VA_ARGS__},                                                 \
		NULL};                                                         \
	__attribute__((constructor)) static void crshim_reg_##suite##_##name(  \
		void)                                                          \
	{                                                                      \
		crshim_register(&crshim_t_##suite##_##name);                   \
	}                                                                      \
	static void crshim_fn_##suite##_##name(void)

#define TestSuite(suite, ...)                                                  \
	static struct crshim_suite crshim_s_##suite = {                        \
		#suite, {__VA_ARGS__}, NULL};                                  \
	__attribute__((constructor)) static void crshim_sreg_##suite(void)     \
	{                                                                      \
		crshim_register_suite(&crshim_s_##suite);                      \
	}

/* The leading " " keeps the format non-empty when no message is given. */
#define CRSHIM_CHECK(fatal, ok, expr, ...)                                     \
	crshim_check((ok), (fatal), __FILE__, __LINE__, expr, " " __VA_ARGS__)

#define cr_assert(c, ...) CRSHIM_CHECK(1, !!(c), #c, __VA_ARGS__)
#define cr_expect(c, ...) CRSHIM_CHECK(0, !!(c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) CRSHIM_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) CRSHIM_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...)                                                \
	CRSHIM_CHECK(1, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)                                               \
	CRSHIM_CHECK(1, (a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)                                                \
	CRSHIM_CHECK(1, (a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)                                               \
	CRSHIM_CHECK(1, (a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)                                                \
	CRSHIM_CHECK(1, (a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)                                               \
	CRSHIM_CHECK(1, (a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...)                                     \
	CRSHIM_CHECK(1,                                                        \
		     (double)(a) - (double)(b) <= (double)(eps) &&             \
			     (double)(b) - (double)(a) <= (double)(eps),       \
		     #a " == " #b " (within " #eps ")", __VA_ARGS__)
#define cr_assert_null(p, ...)                                                 \
	CRSHIM_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...)                                             \
	CRSHIM_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                            \
	CRSHIM_CHECK(1, strcmp((a), (b)) == 0, #a " streq " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                           \
	CRSHIM_CHECK(1, strcmp((a), (b)) != 0, #a " strneq " #b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...)                                                \
	CRSHIM_CHECK(0, (a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                            \
	CRSHIM_CHECK(0, strcmp((a), (b)) == 0, #a " streq " #b, __VA_ARGS__)
#define cr_expect_str_neq(a, b, ...)                                           \
	CRSHIM_CHECK(0, strcmp((a), (b)) != 0, #a " strneq " #b, __VA_ARGS__)
/* A skipped test's child exits with this. */
#define CRSHIM_SKIPPED 77
void crshim_skip(const char *why) __attribute__((noreturn));
#define cr_skip_test(why) crshim_skip(why)
#define cr_assert_fail(...) CRSHIM_CHECK(1, 0, "failed", __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...)                                         \
	CRSHIM_CHECK(1, memcmp((a), (b), (n)) == 0, #a " memeq " #b,           \
		     __VA_ARGS__)
#define cr_log_info(...) crshim_log(__VA_ARGS__)

#endif
