"""An embedded, bounded process pool for long jobs, coordinated through Redis.

Generic on purpose: it runs registered job functions in isolated child processes and
knows nothing of Sanic, SQL or traces. Never import `sanic` or `sanic_trace` here.
"""
