/* Prints the SQL of src/meta/sql/schema.c, as the PostgreSQL driver sends
 * it, for postgres.sh check, which compares it with the PostgreSQL schema
 * and prepares every statement on a real server.  "migrations": one
 * migration per line, in order, as SQLite runs it; "pg-migrations": the
 * same through the driver's substitutions (src/meta/pg/ddl.c).
 * "statements": one "id<TAB>text" line per statement, the PostgreSQL text
 * where schema.c has one (brt_sql_text_pg), the id in lower case without
 * the BRT_SQL_ prefix.  The ids come from schema.h by the build
 * command (-DBERTH_SQL_NAMES), so this file needs no edit when a statement
 * is added. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta/pg/ddl.h"
#include "meta/sql/schema.h"

static const char *const names[] = {BERTH_SQL_NAMES};

_Static_assert(sizeof(names) / sizeof(names[0]) == BRT_SQL_COUNT, "one name per statement");

int main(int argc, char **argv)
{
	int i;

	if (argc == 2 && strcmp(argv[1], "migrations") == 0) {
		for (i = 0; i < BRT_SQL_SCHEMA_VERSION; i++)
			printf("%s\n", brt_sql_migrations[i]);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "pg-migrations") == 0) {
		for (i = 0; i < BRT_SQL_SCHEMA_VERSION; i++) {
			char *ddl = NULL;

			if (brt_pg_ddl(&ddl, brt_sql_migrations[i]) < 0)
				return 1;
			printf("%s\n", ddl);
			free(ddl);
		}
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "statements") == 0) {
		for (i = 0; i < BRT_SQL_COUNT; i++)
			printf("%s\t%s\n", names[i],
			       brt_sql_text_pg[i] ? brt_sql_text_pg[i] : brt_sql_text[i]);
		return 0;
	}
	fprintf(stderr, "usage: %s migrations|pg-migrations|statements\n", argv[0]);
	return 2;
}
