"""`python -m authz.cli`: the `authz` command, as the tests and benchmarks start it."""

from authz.cli import main

main(prog_name="authz")
