/*
 * grow: the grow-by-doubling idiom, once.  Header-only; no state.
 */
#ifndef SOCKSGATE_GROW_H
#define SOCKSGATE_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Makes *v (an array of elements of `size` bytes, *cap of them) hold at
 * least `need`: doubles from `first`.  Returns 0, or -1 (out of memory or
 * overflow; *v and *cap unchanged).
 */
static inline int grow(void *v, size_t *cap, size_t need, size_t size,
		       size_t first)
{
	void **pv = (void **)v;
	size_t nc = *cap ? *cap : first;
	void *nv;

	while (nc < need) {
		if (nc > SIZE_MAX / 2)
			return -1;
		nc *= 2;
	}
	if (nc == *cap)
		return 0;
	if (size && nc > SIZE_MAX / size)
		return -1;
	nv = realloc(*pv, nc * size);
	if (nv == NULL)
		return -1;
	*pv = nv;
	*cap = nc;
	return 0;
}

#endif
