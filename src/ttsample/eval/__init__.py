"""Evaluation: exact output laws and distances."""
