"""ocibuild: a daemonless OCI image builder for HEP software."""

__version__ = "0.1.0"
__all__ = ["__version__"]
