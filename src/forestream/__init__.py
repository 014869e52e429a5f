"""forestream — self-hosted real-time machine learning on streams."""

__version__ = "0.1.0"
