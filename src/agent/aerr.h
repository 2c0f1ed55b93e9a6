/* aerr.h -- the error codes of the agent's own modules (src/agent): a
 * function that can fail returns one of these and fills its caller's
 * message buffer with what was wrong and where. */
#ifndef WARD_AGENT_AERR_H
#define WARD_AGENT_AERR_H

enum aerr {
	AERR_OK = 0,
	AERR_NOMEM,
	AERR_IO,       /* a read, write or rename failed (a full disk among them) */
	AERR_TAMPERED, /* a quarantine record does not authenticate or is malformed */
	AERR_CHANGED,  /* the file is no longer the one scanned (device, inode) */
	AERR_GONE,     /* the file no longer exists */
	AERR_TYPE,     /* not a regular file: a symbolic link, FIFO, device, directory */
	AERR_EXISTS,   /* a restore's target exists and overwriting was not asked */
	AERR_NOTFOUND, /* no quarantine item has that id */
	AERR_REFUSED,  /* not acted upon: an error or timeout verdict, a bad argument */
	/* Real-time scanning. */
	AERR_INVALID,     /* the configuration is wrong: errbuf names what */
	AERR_UNAVAILABLE, /* fanotify cannot be used here: errbuf says why */
	AERR_SYS,         /* a system call failed: errbuf names it */
	/* Scan workers. */
	AERR_START,       /* no worker could be started, or it did not get ready */
	AERR_WORKER,      /* the worker died, broke the protocol or is not taking
			   * requests: the file was not scanned */
	AERR_TIMEOUT,     /* no verdict within the request's deadline */
	AERR_SCAN,        /* the worker could not scan the file (its message) */
	AERR_FULL,        /* the scan queue is full */
	AERR_CANCELLED,   /* ended by scanner_cancel() before it was sent */
	AERR_NOTNEEDED,   /* its needed() said no before it was sent */
};

#endif
