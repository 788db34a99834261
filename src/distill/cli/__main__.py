"""`python -m distill.cli`: what the `distill` script runs."""

from distill.cli import app

if __name__ == "__main__":
    app()
