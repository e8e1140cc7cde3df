"""Training: one model and target, resumable (`train`), tuned values (`hyperparameters`),
several processes under torchrun (`distributed`), runs side by side on a CPU
(`side_by_side`), the lower-rate search (`tune`)."""
