"""Statistics for leads: what the campaign's comparisons say about the variants and the annotators.

Pure numerics on aggregated counts (numpy, scipy, scikit-learn, krippendorff; never torch):

intervals      Wilson score intervals for proportions
bradley_terry  Bradley-Terry ratings from pairwise win/tie counts, bootstrap confidence intervals
agreement      percent agreement, Cohen's kappa per annotator pair, Krippendorff's alpha
anomalies      flags on annotators: one side, too fast, low agreement, low gold accuracy, outlier votes

and the database side:

queries        the GROUP BY queries that turn comparison rows into those counts (no Python loops)
campaign       one campaign's (or all campaigns') statistics as a JSON-ready report
refresh        precomputed reports: stored by a worker task, read by pages and the API
"""
