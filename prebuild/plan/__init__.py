"""Plan: keys plus registry status (present/missing/stale/unknown)."""
