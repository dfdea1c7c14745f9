"""Published results from the field (Pythia, ObsScaling, any table with a map) as rows of the result schema."""
