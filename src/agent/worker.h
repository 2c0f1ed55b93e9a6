/* worker.h -- a scan worker: the process `ward-agent worker` that the
 * privileged agent starts (scanner.h) to run libclamav on the files it
 * hands over (docs/architecture.md, "Scan workers").
 *
 * It loads and compiles one component's engine, confines itself
 * (sandbox.h), says it is ready, and then serves scan requests from its
 * channel (wmsg.h) with a pool of scan threads. Smart scan's requests to
 * the smart protection sources go to the agent over the same channel. It
 * exits when the channel closes.
 */
#ifndef WARD_AGENT_WORKER_H
#define WARD_AGENT_WORKER_H

/* Runs the worker with its command line (argv[0] is "worker"; the options
 * are those scanner.c writes: --fd, --dir, --builtin, --smart, --threads,
 * --uid, --gid, --scratch, the engine limits, the smart protection
 * sources). Ends the process (status 0) when the channel closes, and
 * with status 1 when the agent breaks the protocol; returns only before
 * it serves: 1 when it cannot load or confine itself (logged), 2 on a bad
 * command line. Call it on the process's only thread. */
int worker_main(int argc, char **argv);

#endif
