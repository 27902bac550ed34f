"""The Oracle path without an Oracle server: URL parsing, pool and cursor settings, error mapping.

No results are faked: what can be checked for real is checked (a refused connection
goes through python-oracledb's thin driver and must come out as DatabaseUnavailable).
"""

from __future__ import annotations

import oracledb
import pytest

from sanic_trace.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout
from sanic_trace.db.oracle_source import OracleSource, classify_oracle_error
from sanic_trace.db.source import open_source
from sanic_trace.db.url import parse_db_url
from sanic_trace.settings import load_settings
from support.servers import free_port


def test_url_parsing_with_encoded_password() -> None:
    params = parse_db_url("oracle://mes_ro:p%40ss%2Fw@db.example:1522/DWHPRD")
    assert (params.user, params.password, params.host, params.port, params.service) == (
        "mes_ro",
        "p@ss/w",
        "db.example",
        1522,
        "DWHPRD",
    )
    assert params.dsn == "db.example:1522/DWHPRD"
    assert parse_db_url("oracle://u:p@h/S").port == 1521


@pytest.mark.parametrize("url", ["oracle://h:1/S", "oracle://u:p@h:1/", "mysql://u:p@h/S"])
def test_bad_urls_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        parse_db_url(url)


def test_pool_and_cursor_follow_settings() -> None:
    settings = load_settings(
        {"TRACE_DB_URL": "oracle://u:p@h:1521/S", "DB_FETCHMANY_SIZE": "5000", "DB_QUERY_TIMEOUT_SECONDS": "60",
         "DB_POOL_MIN": "2", "DB_POOL_MAX": "6", "DB_IN_BATCH_SIZE": "700"}
    )
    source = open_source(settings)
    assert isinstance(source, OracleSource)
    args = source.pool_arguments()
    assert (args["dsn"], args["min"], args["max"], args["user"]) == ("h:1521/S", 2, 6, "u")
    assert source.cursor_settings(5000) == {"arraysize": 5000, "prefetchrows": 5001}
    assert source.call_timeout_ms == 60_000
    assert source.in_batch_size == 700 and source.fetch_size == 5000
    assert oracledb.is_thin_mode()



def test_unreachable_server_is_database_unavailable() -> None:
    settings = load_settings(
        {"TRACE_DB_URL": f"oracle://u:p@127.0.0.1:{free_port()}/S", "DB_QUERY_TIMEOUT_SECONDS": "3",
         "DB_POOL_MIN": "0", "DB_POOL_MAX": "1"}
    )
    source = open_source(settings)
    with pytest.raises(DatabaseUnavailable):
        source.ping()
    source.close()


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("DPY-4024: call timeout of 60000 ms exceeded", QueryTimeout),
        ("ORA-01013: user requested cancel of current operation", QueryTimeout),
        ("DPI-1067: call timeout of 1000 ms exceeded with ORA-3156", QueryTimeout),
        ("DPI-1080: connection was closed by ORA-3156", QueryTimeout),
        ("DPY-6005: cannot connect to database", DatabaseUnavailable),
        ("ORA-00942: table or view does not exist", DatabaseError),
    ],
)
def test_error_classification(message: str, kind: type) -> None:
    result = classify_oracle_error(oracledb.DatabaseError(message))
    assert type(result) is kind
