// libpq through pkg-config: scripts/libpq-static's static build, or Debian's libpq-dev.
#include <libpq-fe.h>

// scripts/libpq-patches/send-prepared-without-describe.patch: an execution of a prepared
// statement without Describe, its rows shaped like an earlier result's. Weak, so that a build
// against a libpq without the patch (Debian's libpq-dev) links, and sends Describe as before.
extern int PQsendQueryPreparedShaped(PGconn *conn, const char *stmtName, int nParams,
                                     const char *const *paramValues, const int *paramLengths,
                                     const int *paramFormats, int resultFormat,
                                     const PGresult *rowShape) __attribute__((weak));

/// Whether the linked libpq has PQsendQueryPreparedShaped.
static inline int todo_libpq_sends_shaped(void) {
    return PQsendQueryPreparedShaped != 0;
}

/// PQsendQueryPreparedShaped with text parameters, or PQsendQueryPrepared (with Describe) when
/// the linked libpq lacks it.
static inline int todo_send_query_prepared_shaped(PGconn *conn, const char *stmtName, int nParams,
                                                  const char *const *paramValues, int resultFormat,
                                                  const PGresult *rowShape) {
    if (PQsendQueryPreparedShaped != 0)
        return PQsendQueryPreparedShaped(conn, stmtName, nParams, paramValues, 0, 0, resultFormat, rowShape);
    return PQsendQueryPrepared(conn, stmtName, nParams, paramValues, 0, 0, resultFormat);
}

// scripts/libpq-patches/sync-without-flush.patch (PostgreSQL 17's PQsendPipelineSync): a Sync
// queued without sending the output buffer. Weak, like the function above.
extern int PQsendPipelineSync(PGconn *conn) __attribute__((weak));

/// Whether the linked libpq has PQsendPipelineSync.
static inline int todo_libpq_queues_sync(void) {
    return PQsendPipelineSync != 0;
}

/// PQsendPipelineSync, or PQpipelineSync (which also flushes) when the linked libpq lacks it.
static inline int todo_send_pipeline_sync(PGconn *conn) {
    if (PQsendPipelineSync != 0)
        return PQsendPipelineSync(conn);
    return PQpipelineSync(conn);
}

// scripts/libpq-patches/value-access.patch: a field's value and length in one call (NULL, with
// length -1, for SQL NULL or a position out of range). Weak, like the functions above.
extern const char *PQgetfield(const PGresult *res, int tup_num, int field_num, int *length) __attribute__((weak));

/// Whether the linked libpq has PQgetfield.
static inline int todo_libpq_gets_fields(void) {
    return PQgetfield != 0;
}

/// PQgetfield, or PQgetisnull, PQgetlength and PQgetvalue when the linked libpq lacks it.
static inline const char *todo_get_field(const PGresult *res, int row, int column, int *length) {
    if (PQgetfield != 0)
        return PQgetfield(res, row, column, length);
    if (PQgetisnull(res, row, column)) {
        *length = -1;
        return 0;
    }
    *length = PQgetlength(res, row, column);
    return PQgetvalue(res, row, column);
}
