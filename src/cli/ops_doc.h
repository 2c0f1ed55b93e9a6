/* ops_doc.h -- help and reference text made from the operation table
 * (src/common/ops.def), so that `ward COMMAND --help`, `ward --help`,
 * docs/api.md and man/ward.1 cannot disagree with what the server routes.
 */
#ifndef WARD_OPS_DOC_H
#define WARD_OPS_DOC_H

#include <stdio.h>

#include "common/ops.h"

/* Writes op's command-line usage ("settings set --scope SCOPE KEY VALUE
 * [--apply APPLY]") into out (len bytes, cut only beyond len). op must
 * have CLI words. Thread-safe. */
void ops_doc_usage(char *out, size_t len, const struct ops_op *op);

/* Prints `ward COMMAND --help` for op (which has CLI words) to f: usage,
 * summary, each argument with its help and where it goes, the request. */
void ops_doc_help(FILE *f, const struct ops_op *op);

/* Prints the usage and summary of every administration command, or of
 * those whose first word is group (when not NULL), one per entry. */
void ops_doc_list(FILE *f, const char *group);

/* Prints the generated part of docs/api.md ("api": the route reference)
 * or of man/ward.1 ("man": the administration commands) to f. Returns 0,
 * or -1 when what is neither. */
int ops_doc_reference(FILE *f, const char *what);

#endif
