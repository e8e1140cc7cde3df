"""The networks (`networks`: Open-Unmix, the two-branch models, save and load) and the
model files they are read from (`model_files`; Open-Unmix's own files: `umx_files`)."""
