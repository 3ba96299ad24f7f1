/* The DDL substitutions of the PostgreSQL driver (ddl.c). */
#ifndef BRT_META_PG_DDL_H
#define BRT_META_PG_DDL_H

/* The PostgreSQL text of SQLite migration text `sql`: an identity BIGINT
 * primary key for "INTEGER PRIMARY KEY AUTOINCREMENT", BIGINT for every
 * other INTEGER, BYTEA for BLOB, TEXT COLLATE "C" for TEXT (whole words
 * only).  The caller frees *out.  BRT_ENOMEM. */
int brt_pg_ddl(char **out, const char *sql);

#endif
