"""Zaplecze: an open-source back office for securities brokers.

The public surface is the CLI (``zaplecze``) and the book-folder contract; the rooms below
``zaplecze`` tell the story of a trade from capture to report.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
