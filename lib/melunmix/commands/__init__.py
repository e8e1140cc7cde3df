"""The `melunmix` command (`cli`) and `melunmix score` (`score`: any system's estimates
scored as museval does, with their tables)."""
