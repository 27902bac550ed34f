"""Database failures as the rest of the service sees them, whatever the database."""


class DatabaseError(Exception):
    """A query failed for a reason that is neither a timeout nor an unreachable database."""


class QueryTimeout(DatabaseError):
    """A round trip ran past DB_QUERY_TIMEOUT_SECONDS (ORA-01013, DPY-4024, DPI-1067/1080, sqlite interrupt)."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or opened."""
