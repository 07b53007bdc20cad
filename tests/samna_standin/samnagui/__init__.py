"""Stand-in for samnagui (sinabs imports it at module level; nothing here is used)."""
