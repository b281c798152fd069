"""The strategies an A/B test can put in an arm: the run's winner, or one named candidate model of the same run."""

# "model" is whatever the run serves; the others are precomputed for a run only while an experiment uses them.
STRATEGIES = ["model", "popularity", "itemknn", "rp3beta", "ease", "edlae", "als", "svd", "content", "hybrid"]
