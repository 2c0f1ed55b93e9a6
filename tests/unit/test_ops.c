/* test_ops.c -- routing by the operation table: exact paths, a path that
 * ends in a parameter (the central quarantine's PUT .../ITEM), and one
 * with a parameter between fixed parts (a deployment's /deploy/TOKEN/...). */
#include "check.h"
#include "common/ops.h"

int main(void)
{
	const struct ops_op *op, *file = &ops_table()[OPS_AGENT_QUARANTINE_FILE];
	const struct ops_op *script = &ops_table()[OPS_DEPLOY_INSTALL];
	char v[OPS_MAX_PARAM], small[4];
	bool known;

	op = ops_route("POST", "/api/v1/agent/quarantine", &known);
	CHECK(op && op->id == OPS_AGENT_QUARANTINE && known);
	op = ops_route("PUT", "/api/v1/agent/quarantine/q-7", &known);
	CHECK(op && op->id == OPS_AGENT_QUARANTINE_FILE && known);
	CHECK(ops_path_param(file, "/api/v1/agent/quarantine/q-7", v, sizeof(v)));
	CHECK_STR_EQ(v, "q-7");
	/* Nothing after the slash, a slash in the value, another prefix: no. */
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantine/", v, sizeof(v)));
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantine/a/b", v, sizeof(v)));
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantinex", v, sizeof(v)));
	CHECK(!ops_path_param(&ops_table()[OPS_AGENT_QUARANTINE], "/api/v1/agent/quarantine/x", v,
			      sizeof(v)));
	/* A value longer than the buffer is refused, not cut. */
	CHECK(!ops_path_param(file, "/api/v1/agent/quarantine/abcd", small, sizeof(small)));
	CHECK(ops_path_param(file, "/api/v1/agent/quarantine/abc", small, sizeof(small)));
	/* A parameter between fixed parts. */
	CHECK(ops_path_param(script, "/deploy/t0k/install.sh", v, sizeof(v)));
	CHECK_STR_EQ(v, "t0k");
	CHECK(!ops_path_param(script, "/deploy//install.sh", v, sizeof(v)));
	CHECK(!ops_path_param(script, "/deploy/a/b/install.sh", v, sizeof(v)));
	CHECK(!ops_path_param(script, "/deploy/t0k/install.shx", v, sizeof(v)));
	CHECK(!ops_path_param(script, "/deploy/install.sh", v, sizeof(v)));
	op = ops_route("GET", "/deploy/t0k/ward-agent.deb", &known);
	CHECK(op && op->id == OPS_DEPLOY_PACKAGE);
	op = ops_route("POST", "/deploy/t0k/report", &known);
	CHECK(op && op->id == OPS_DEPLOY_REPORT);
	CHECK(!ops_route("GET", "/deploy/t0k/other", &known) && !known);
	CHECK(!ops_route("PUT", "/api/v1/agent/quarantine/a/b", &known) && !known);
	/* Another method on a parameter path is known (405), not missing. */
	CHECK(!ops_route("GET", "/api/v1/agent/quarantine/q-7", &known) && known);
	op = ops_route("POST", "/api/v1/scans", &known);
	CHECK(op && op->id == OPS_SCAN_NOW);
	CHECK(!ops_route("POST", "/api/v1/scansx", &known) && !known);
	return check_finish();
}
