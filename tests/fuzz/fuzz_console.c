/* fuzz_console.c -- libFuzzer target for what reaches wardd's console and
 * event-log routes from outside: a browser's Cookie header, an agent's
 * detection report, and the CSV cells the event log's export writes from
 * agent-chosen text. The input's first byte picks the parser; the rest is
 * its input. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "server/logs.h"
#include "server/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct util_buf b = { 0 };
	char token[65], msg[1200], *text;
	json_t *list;

	text = fuzz_text(data, size);
	if (!text)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (session_cookie_parse(text, token) && strlen(token) != 64)
			abort();
		break;
	case 1:
		list = logs_parse_report(text, size - 1, msg, sizeof(msg));
		if (!list && !msg[0])
			abort();
		json_decref(list);
		break;
	default:
		if (logs_csv_field(&b, text) == 0 && strchr("=+-@\t\r", text[0]) && text[0] &&
		    (b.len < 2 || b.data[1] != '\''))
			abort();
		util_buf_free(&b);
	}
	free(text);
	return 0;
}
