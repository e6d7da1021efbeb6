"""Tables, figures and aggregation of run metrics."""
