"""Run the kratomlit CLI from a checkout without installing it: ``python cli.py --help``."""

from kratomlit.cli import main

if __name__ == "__main__":
    main()
