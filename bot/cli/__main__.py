"""`python -m bot.cli`: the same as the `houqin` console script."""

from bot.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
