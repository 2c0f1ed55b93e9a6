/* err.h -- the error codes of the common layer (src/common), one enum for
 * every shared module: a function that can fail returns one of these and
 * fills its caller's message buffer with what was wrong and where. */
#ifndef WARD_ERR_H
#define WARD_ERR_H

enum err {
	ERR_OK = 0,
	ERR_NOMEM,
	ERR_IO,       /* a file could not be read or written; the local disk failed */
	ERR_FORMAT,   /* the input is malformed: errbuf names what and where */
	ERR_BASE,     /* a delta does not fit the installed version: take the full package */
	ERR_HASH,     /* a payload's size or SHA-256 differs from its manifest */
	ERR_LIMIT,    /* a member or the whole archive is over its limit */
	ERR_SIG,      /* a signature does not verify, or its key is not trusted */
	ERR_OLD,      /* the version is not newer than the one installed */
	ERR_NET,      /* no connection, TLS failure, timeout, or the peer stayed busy */
	ERR_PROTO,    /* the answer is not what the protocol says */
	ERR_NONE,     /* the server has no version of the component yet */
	ERR_REFUSED,  /* a package failed verification: logged, nothing installed */
};

#endif
