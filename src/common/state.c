/* state.c -- state directory files (see state.h). */
#include "common/state.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

bool state_write(const char *path, const char *text)
{
	if (util_replace_file(path, text, strlen(text), 0600) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

bool state_write_json(const char *path, const json_t *obj)
{
	if (util_write_json(path, obj) != 0) {
		log_msg(LOG_LVL_ERROR, "%s: %s", path, strerror(errno));
		return false;
	}
	return true;
}
