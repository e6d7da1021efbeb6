"""Tools shared by the test suite and the benchmarks, used by no stage of the pipeline.

`raw` generates raw dataset folders, `sdk_oracle` runs the CMU SDK's alignment as the reference for ours,
`repository` copies a checkout as a fresh clone has it. They live in the package so that benchmarks import
the package, never `tests/`.
"""
