"""`python -m authz.cli`."""

from authz.cli import main

main()
