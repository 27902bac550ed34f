"""The supervisor ↔ child pipe protocol (kept apart so the supervisor never imports jobs.child)."""

from __future__ import annotations

import struct

# stdin frame: 4-byte big-endian length, then a pickled {"config", "job_id", "kind"}.
FRAME = struct.Struct("!I")
# Exit code of a child whose supervisor went away (EOF on its stdin).
EXIT_SUPERVISOR_GONE = 75
