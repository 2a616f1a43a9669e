"""The Swin Transformer: window geometry, layers, and the assembled classifier."""

from swin_gao_lib.model.swin import build_swin

__all__ = ["build_swin"]
