/* test_ops.c -- routing by the operation table: exact paths, and a path
 * that ends in a parameter (the central quarantine's PUT .../ITEM). */
#include "check.h"
#include "common/ops.h"

int main(void)
{
	const struct ops_op *op, *file = &ops_table()[OPS_AGENT_QUARANTINE_FILE];
	bool known;

	op = ops_route("POST", "/api/v1/agent/quarantine", &known);
	CHECK(op && op->id == OPS_AGENT_QUARANTINE && known);
	op = ops_route("PUT", "/api/v1/agent/quarantine/q-7", &known);
	CHECK(op && op->id == OPS_AGENT_QUARANTINE_FILE && known);
	CHECK_STR_EQ(ops_path_param(file, "/api/v1/agent/quarantine/q-7"), "q-7");
	/* Nothing after the slash, a slash in the value, another prefix: no. */
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantine/"));
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantine/a/b"));
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantinex"));
	CHECK(!ops_path_param(&ops_table()[OPS_AGENT_QUARANTINE], "/api/v1/agent/quarantine/x"));
	CHECK(!ops_route("PUT", "/api/v1/agent/quarantine/a/b", &known) && !known);
	/* Another method on a parameter path is known (405), not missing. */
	CHECK(!ops_route("GET", "/api/v1/agent/quarantine/q-7", &known) && known);
	op = ops_route("POST", "/api/v1/scans", &known);
	CHECK(op && op->id == OPS_SCAN_NOW);
	CHECK(!ops_route("POST", "/api/v1/scansx", &known) && !known);
	return check_finish();
}
