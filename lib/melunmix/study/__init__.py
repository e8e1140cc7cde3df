"""The study: what the notebooks call (`run_setup`, `presentation`, `exploration`,
`training_steps`, `scoring_steps`, `example_audio`), a whole profile's training and tuning
for the commands (`profile_commands`), `REPORT.md` (`report`), papermill over the numbered
notebooks (`pipeline`)."""
