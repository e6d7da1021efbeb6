"""Data stage: acquisition, synthetic data, CMU computational sequences, alignment, pickle importers."""
