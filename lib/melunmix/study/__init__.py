"""The study: the notebooks' steps (`steps`), `REPORT.md` (`report`), papermill over the
numbered notebooks (`pipeline`)."""
