/* input.h -- the shape of input the fuzz targets that take a selector
 * byte share: the first byte picks what to drive, the rest is text. */
#ifndef WARD_FUZZ_INPUT_H
#define WARD_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The size - 1 bytes after the selector, NUL-terminated, in a new
 * allocation the caller frees; NULL when size is 0 or memory runs out. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
	char *text;

	if (size < 1 || !(text = malloc(size)))
		return NULL;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	return text;
}

#endif
