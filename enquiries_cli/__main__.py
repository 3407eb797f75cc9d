"""`python -m enquiries_cli ...`: the same as the `enquiries` console script."""

from enquiries_cli.cli import main

main()
