"""The base layer: the study's vocabulary (`names`), profiles and where files go (`config`),
atomic files and the lock (`files`), worker processes (`processes`), provenance, the
default device, Markdown tables, the generated dataset's format name. Imports nothing
above it."""
