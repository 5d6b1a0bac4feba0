"""Training: the run config, fitting one model spec (callbacks, phases, class weights), on-device
augmentation, progress display and the environment record."""
