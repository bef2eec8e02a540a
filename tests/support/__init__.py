"""Helpers for the tests and benchmarks: process harness, fault proxy, own broker nodes, cluster
hosts, data sets. No fixtures here (those live in the conftest.py of each tier)."""
