"""Experiments: declarative specs, the resumable result store, the runner and the shipped reproductions."""
