"""Analysis of saved scores and histories: tables and statistics (`stats`), figures
(`plots`). Imports only the base and signal-processing layers: never a model, a
separation or the report."""
