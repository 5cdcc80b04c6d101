/*
 * crshim: the runner (see criterion/criterion.h).  Runs every registered
 * test in a forked child, in suite/name order, each bounded by a timeout
 * (CRSHIM_TIMEOUT seconds, default 300: qemu-user is slow), and prints a
 * Criterion-like synthesis line.  Exit 0 only if every test passed.
 * Arguments are accepted and ignored (ctest passes --jobs 1).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "criterion/criterion.h"

static struct crshim_test *tests;
static struct crshim_suite *suites;
static int failed; /* in the child: a non-fatal check failed */

void crshim_register(struct crshim_test *t)
{
	t->next = tests;
	tests = t;
}

void crshim_register_suite(struct crshim_suite *s)
{
	s->next = suites;
	suites = s;
}

void crshim_skip(const char *why)
{
	fprintf(stderr, "[SKIP] %s\n", why);
	fflush(NULL);
	_exit(CRSHIM_SKIPPED);
}

void crshim_check(int ok, int fatal, const char *file, int line,
		  const char *expr, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	fprintf(stderr, "%s:%d: Assertion failed: %s:", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (fatal)
		_exit(1);
	failed = 1;
}

void crshim_log(const char *fmt, ...)
{
	va_list ap;

	fputs("[----] ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int cmp_tests(const void *a, const void *b)
{
	const struct crshim_test *x = *(struct crshim_test *const *)a;
	const struct crshim_test *y = *(struct crshim_test *const *)b;
	int c = strcmp(x->suite, y->suite);
	return c ? c : strcmp(x->name, y->name);
}

static const struct crshim_suite *suite_of(const struct crshim_test *t)
{
	for (const struct crshim_suite *s = suites; s; s = s->next)
		if (strcmp(s->name, t->suite) == 0)
			return s;
	return NULL;
}

/* 0 passed, 1 failed, 2 crashed or timed out. */
static int run_one(const struct crshim_test *t, unsigned timeout)
{
	const struct crshim_suite *s = suite_of(t);
	void (*init)(void) = t->o.init ? t->o.init : s ? s->o.init : NULL;
	void (*fini)(void) = t->o.fini ? t->o.fini : s ? s->o.fini : NULL;
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		alarm(timeout);
		if (init)
			init();
		t->fn();
		if (fini)
			fini();
		fflush(NULL);
		_exit(failed);
	}
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == CRSHIM_SKIPPED)
		return 3;
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 0 ? 0 : 1;
	fprintf(stderr, "[FAIL] %s::%s: %s\n", t->suite, t->name,
		WTERMSIG(st) == SIGALRM ? "timed out"
					: strsignal(WTERMSIG(st)));
	return 2;
}

int main(int argc, char **argv)
{
	const char *to = getenv("CRSHIM_TIMEOUT");
	unsigned timeout = to ? (unsigned)atoi(to) : 300;
	size_t n = 0, i;
	int pass = 0, fail = 0, crash = 0, skip = 0;
	struct crshim_test **v;

	(void)argc;
	(void)argv;
	for (struct crshim_test *t = tests; t; t = t->next)
		n++;
	v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL)
		return 2;
	n = 0;
	for (struct crshim_test *t = tests; t; t = t->next)
		v[n++] = t;
	qsort(v, n, sizeof(*v), cmp_tests);
	for (i = 0; i < n; i++) {
		int r;

		if (v[i]->o.disabled)
			continue;
		r = run_one(v[i], timeout);
		if (r == 0) {
			pass++;
		} else if (r == 3) {
			skip++;
		} else if (r == 1) {
			fprintf(stderr, "[FAIL] %s::%s\n", v[i]->suite,
				v[i]->name);
			fail++;
		} else {
			crash++;
		}
	}
	free(v);
	if (skip)
		fprintf(stderr, "[====] skipped: %d\n", skip);
	fprintf(stderr,
		"[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
		"Crashing: %d\n",
		pass + fail + crash, pass, fail, crash);
	return fail + crash ? 1 : 0;
}
