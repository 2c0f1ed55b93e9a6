/* serr.h -- the error codes of the server layer (src/server), one enum for
 * the store, the PKI, the CVD reader, the importer and the builder: a
 * function that can fail returns one of these and fills its caller's
 * message buffer with what was wrong and where. */
#ifndef WARD_SERR_H
#define WARD_SERR_H

enum serr {
	SERR_OK = 0,
	SERR_NOMEM,
	SERR_IO,        /* a file could not be read or written */
	SERR_DB,        /* the database failed (I/O, corruption, full disk) */
	SERR_FORMAT,    /* a file is malformed, truncated or failed its checks */
	SERR_HASH,      /* a CVD's body differs from its header's MD5 */
	SERR_SIG,       /* a digital signature does not verify */
	SERR_EMPTY,     /* no signature file at all */
	SERR_CRYPTO,    /* GnuTLS refused: a key or certificate is malformed or unusable */
	SERR_INVAL,     /* an argument, name or value is not acceptable */
	SERR_NOENT,     /* no such node, client or setting */
	SERR_EXIST,     /* the name or identity is taken */
	SERR_NOTEMPTY,  /* a domain still holds domains or clients */
	SERR_BUSY,      /* another transaction held what a soft-state write needs: later */
	SERR_LICENSE,   /* no active license covers what was asked */
};

#endif
