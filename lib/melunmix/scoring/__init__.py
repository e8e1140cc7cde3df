"""Scores: a test track's audio for scoring (`track_audio`), one track's BSS Eval v4
scores and museval JSON files (`museval_scores`), the study's methods scored on the test
songs (`evaluate`). Never imports the analysis above it."""
