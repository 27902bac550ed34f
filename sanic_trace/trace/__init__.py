"""The trace domain logic beneath the HTTP layer, one module per stage.

- seeds:   seed-resolve — validate a request, resolve typed values or an MSD station/date range to seeds
- lineage: backward/forward genealogy, level by level with IN-batched queries
- events:  domain specs and the record-batch iterator every events path consumes

Supporting modules: params (request checks), queries (one query over one IN-batch),
records (fetchmany batch → JSON-safe dicts).
"""
