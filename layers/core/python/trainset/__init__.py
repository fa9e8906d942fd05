"""trainset: turn social-media posts into a trustworthy deep-learning training set."""

__version__ = "0.1.0"
