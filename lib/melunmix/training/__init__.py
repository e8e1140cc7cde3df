"""Training: one model and target, resumable (`train`: the recipe and the `Trainer`; what it
trains on, `training_data`; its network, `model_setup`; its files, `run_files`; learning-rate
schedule and early stopping, `schedule`; random state, `randomness`; one epoch's passes,
`epoch`), tuned values (`hyperparameters`), several processes under torchrun
(`distributed`), runs side by side on a CPU (`side_by_side`), the lower-rate search (`tune`)."""
