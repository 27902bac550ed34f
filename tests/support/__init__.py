"""Helpers of the tests, one module per job (tests/ is on sys.path: pyproject's pytest `pythonpath`).

Fixtures built from them live in tests/conftest.py (tests/pool/conftest.py for the pool-only ones).
Nothing is imported here: the pool's job children import support.pool_samples without the service.

warehouses          WarehouseBuilder (rows by hand), open_warehouse, container_ids, DemoWarehouses (the memo)
standard_warehouse  the tiny scenario the trace and API tests share (R1, S3, F1, ...)
msd_warehouses      the hand-made MSD warehouses (small, suspects) and the demo's detection lots
msd_oracle          the MSD oracle: standard library only, independent of the service
expected            the expected records of each events domain, in plain SQL and Python
settings            the tests' Redis URL and the environment of a service under test
apps                the app in this process: ASGI client, live server in the test's event loop
servers             subprocesses: ServerProcess (the service), RedisServer, free_port
processes           pid_gone, kill_tree
redis_keys          key prefixes (new, deleted afterwards), a job's keys
waits               bounded polling: wait_for, wait_until (async)
trace_jobs          trace jobs over HTTP: submit, status, wait_job, NotifyListener
streams             a job's NDJSON stream: read_stream, check_stream
pool_jobs           pool jobs through a JobClient: wait_status, pid_of
pool_samples        the job functions the pool tests' children run
faults              slow or failing SQL overrides, RedisProxy (a Redis that can be cut)
asserts             the error envelope
"""
