"""Ranking: fusion, MaxP over passages, priors, boosts, filters and explanations."""
