"""``python -m seethrough``: the command line; ``torchrun ... -m seethrough train ...`` starts it once per process."""

from .cli import run

if __name__ == "__main__":
    run()
