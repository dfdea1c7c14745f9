"""Running the grid's points as parallel jobs (local processes or SLURM through submitit) and recording them in dvc.lock."""
