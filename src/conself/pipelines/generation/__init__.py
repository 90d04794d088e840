"""The generation stage of a ConSelf round."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
