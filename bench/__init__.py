"""Benchmark scripts. Each writes results/*.json with the command, machine, versions and date."""
