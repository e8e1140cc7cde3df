"""Analysis of saved scores and histories: scores read (`score_frames`), statistics
(`inference`), tables (`result_tables`), sentences (`sentences`), the plateau rule
(`plateau`); figures (`figure_style`, what all share; `training_figures`, `audio_figures`,
`score_figures`, `tuning_figures`). Imports only the base and signal-processing layers:
never a model, a separation or the report."""
